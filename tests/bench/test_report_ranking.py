"""The "which loss" report and the significance marks of the tables, on made-up records."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from rankloss.bench.report import (
    baseline_report,
    compare_to_baseline,
    compare_to_best,
    family_comparison,
    markdown_tables,
    recommendation,
    summarise,
    which_loss_report,
    write_reports,
)
from rankloss.bench.stats import mean_interval, paired_comparison

# Test ndcg@10 per seed (seeds 0-4) of each row: listnet best; lambdarank within noise of it;
# mse and lightgbm clearly worse.
VALUES = {
    "listnet": [0.431, 0.442, 0.425, 0.450, 0.437],
    "lambdarank": [0.428, 0.445, 0.420, 0.441, 0.433],
    "mse": [0.401, 0.409, 0.398, 0.412, 0.400],
    "lightgbm lambdamart": [0.380, 0.392, 0.377, 0.391, 0.380],
}
NAMES = {"listnet": "listnet", "lambdarank": "lambdarank", "mse": "mse"}


def _records(values: dict[str, list[float]], suite: str = "s", task: str = "ltr") -> list[dict]:
    runs = []
    for row, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            runs.append(
                {
                    "suite": suite,
                    "dataset": "toy",
                    "loss": row,
                    "seed": seed,
                    "primary": "ndcg@10",
                    "seconds": 1.0,
                    "metrics": {"map": 0.5 + value / 10, "ndcg@10": value},
                    "config": {
                        "task": task,
                        "metrics": ["map", "ndcg@10"],
                        "primary": "ndcg@10",
                        "loss": {"name": NAMES.get(row, "lightgbm")},
                    },
                }
            )
    return runs


def test_ranking_comparisons_and_recommendation() -> None:
    runs = _records(VALUES)
    random.Random(0).shuffle(runs)  # pairing goes by seed, not by order
    (table,) = summarise(runs)
    assert table.primary == "ndcg@10"
    assert table.families == {
        "listnet": "listwise",
        "lambdarank": "pairwise",
        "mse": "pointwise",
        "lightgbm lambdamart": None,
    }
    best, comparisons = compare_to_best(table)
    assert best == "listnet"
    for row in ("lambdarank", "mse", "lightgbm lambdamart"):
        reference = paired_comparison(VALUES[row], VALUES["listnet"])
        assert comparisons[row].p_value == pytest.approx(reference.p_value)
        assert comparisons[row].low == pytest.approx(reference.low)
    assert not comparisons["lambdarank"].significant
    assert comparisons["mse"].significant and comparisons["mse"].mean_difference < 0
    text = recommendation(table)
    assert text.startswith("**no significant difference among listnet, lambdarank** on ndcg@10")
    assert "mse, lightgbm lambdamart significantly worse" in text
    # Rows are named highest mean first, whatever the order of the table.
    (backwards,) = summarise(_records(dict(reversed(VALUES.items()))))
    assert backwards.rows[0] == "lightgbm lambdamart"
    assert recommendation(backwards) == text

    report = which_loss_report([table])
    lines = report.splitlines()
    start = lines.index(
        "| rank | loss | ndcg@10 | 95% CI | vs best [95% CI] | p | tied with best |"
    )
    ranked = [line.split(" | ")[1] for line in lines[start + 2 : start + 6]]
    assert ranked == ["listnet", "lambdarank", "mse", "lightgbm lambdamart"]
    mean, low, high = mean_interval(VALUES["listnet"])
    assert f"| 1 | listnet | {mean:.4f} | [{low:.4f}, {high:.4f}] | best |  | ~ |" in report
    c = comparisons["mse"]
    assert f"| 3 | mse | {sum(VALUES['mse']) / 5:.4f} | " in report
    assert c.p_value is not None and c.p_value < 0.001
    assert f"{c.mean_difference:+.4f} [{c.low:+.4f}, {c.high:+.4f}] | <0.001 |  |" in report
    c = comparisons["lambdarank"]
    assert (
        f"{c.mean_difference:+.4f} [{c.low:+.4f}, {c.high:+.4f}] | {c.p_value:.3f} | ~ |" in report
    )
    assert "**Recommendation:** **no significant difference among listnet, lambdarank**" in report


def test_listwise_against_pairwise() -> None:
    (table,) = summarise(_records(VALUES))
    c = paired_comparison(VALUES["listnet"], VALUES["lambdarank"])
    text = family_comparison(table)
    assert text.startswith("best listwise (listnet, 0.4370) minus best pairwise (lambdarank,")
    assert f"= {c.mean_difference:+.4f}, 95% CI [{c.low:+.4f}, {c.high:+.4f}]" in text
    assert text.endswith("(paired t-test, 5 seeds): **no significant difference**.")
    # A pairwise row clearly better.
    better = {**VALUES, "lambdarank": [v + 0.05 for v in VALUES["listnet"][:4]] + [0.49]}
    (table,) = summarise(_records(better))
    assert family_comparison(table).endswith("**pairwise is better**.")
    # A suite without a pairwise row (or with only baselines) cannot answer.
    (table,) = summarise(_records({k: VALUES[k] for k in ("listnet", "mse")}))
    assert family_comparison(table) == "not enough rows (no pairwise row)."
    (table,) = summarise(_records({"lightgbm lambdamart": VALUES["mse"]}))
    assert family_comparison(table) == "not enough rows (no listwise and no pairwise row)."


def test_clear_winner_is_recommended() -> None:
    values = {
        "lambdarank": [v + 0.05 for v in VALUES["lambdarank"]],
        "listnet": VALUES["listnet"],
        "mse": VALUES["mse"],
    }
    (table,) = summarise(_records(values))
    assert recommendation(table) == (
        "**use lambdarank**: every other row is significantly worse on ndcg@10."
    )
    text = markdown_tables([table])
    header = (
        "| loss | map | ndcg@10 | seeds | s/run | vs best ndcg@10 [95% CI] | p | tied with best |"
    )
    assert header in text
    assert text.splitlines()[4].endswith("| 5 | 1.0 | best |  | ~ |")  # lambdarank
    assert text.splitlines()[5].endswith("|  |")  # listnet: significantly worse, no mark


def test_fewer_than_three_seeds_say_na() -> None:
    values = {row: v[:2] for row, v in VALUES.items()}
    (table,) = summarise(_records(values))
    assert recommendation(table).startswith("not enough seeds to tell the rows apart")
    assert "| n/a | n/a |" in markdown_tables([table])
    assert "n/a (a paired test needs at least 3 seeds)" in family_comparison(table)
    # One row with 3 seeds against a best row that ran once (a deterministic baseline).
    mixed = {"listnet": VALUES["listnet"], "lambdarank": [0.5]}
    (table,) = summarise(_records(mixed))
    assert recommendation(table) == (
        "not enough seeds to tell the rows apart (a paired test needs at least 3 seeds per "
        "row); the highest mean ndcg@10 is lambdarank's."
    )
    (table,) = summarise(_records({"listnet": VALUES["listnet"]}))
    assert recommendation(table) == "only one row (listnet): nothing to compare."


def test_results_md_opens_with_the_report_and_lists_tuning(tmp_path: Path) -> None:
    entries = [
        {
            "suite": "s",
            "row": "listnet",
            "primary": "ndcg@10",
            "trials_requested": 2,
            "space": {"budget": {"lr": ["log", 1e-4, 1e-2]}, "hyper": {}},
            "trials": [{"value": 0.41, "seconds": 1.0}, {"value": 0.45, "seconds": 3.0}],
            "best": {"number": 1, "value": 0.45, "setting": {"budget": {"lr": 0.002}, "hyper": {}}},
            "status": "tuned",
            "seconds_per_trial": 2.0,
        },
        {
            "suite": "s",
            "row": "lightgbm lambdamart",
            "primary": "ndcg@10",
            "trials_requested": 2,
            "space": {"budget": {}, "hyper": {}},
            "trials": [],
            "best": None,
            "status": "skipped",
            "note": "lightgbm is not installed",
        },
    ]
    write_reports(tmp_path, _records(VALUES), plots=False, tuning=entries)
    text = (tmp_path / "results.md").read_text()
    assert text.startswith("# rankloss bench results\n\n## Which loss?\n")
    assert text.index("### s (toy): ranked by ndcg@10") < text.index("## Tables")
    assert text.index("## Tables") < text.index("## Tuning")
    assert "| listnet | lr=0.002 | 0.4500 (trial 2) | 2/2 | 2.0 | lr log [0.0001, 0.01] |" in text
    assert "| lightgbm lambdamart | defaults (skipped: lightgbm is not installed) | – |" in text
    # Without tuning, no tuning section.
    write_reports(tmp_path, _records(VALUES), plots=False)
    assert "## Tuning" not in (tmp_path / "results.md").read_text()


# ------------------------------------------------------------------ against the baselines
def _retrieval_records(values: dict[str, list[float]]) -> list[dict]:
    """map@r per seed; ``raw`` and ``untrained`` train no loss, ``raw`` runs once."""
    runs = []
    for row, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            runs.append(
                {
                    "suite": "r",
                    "dataset": "toy",
                    "loss": row,
                    "seed": seed,
                    "primary": "map@r",
                    "seconds": 1.0,
                    "metrics": {"map@r": value},
                    "config": {
                        "task": "retrieval",
                        "metrics": ["map@r"],
                        "primary": "map@r",
                        "loss": {
                            "name": row,
                            "options": {"deterministic": True} if row == "raw" else {},
                        },
                    },
                }
            )
    return runs


RETRIEVAL = {
    "raw": [0.50],
    "untrained": [0.60, 0.62, 0.61, 0.63],
    "supcon": [0.64, 0.66, 0.646, 0.67],  # clearly above both
    "contrastive": [0.61, 0.60, 0.63, 0.62],  # above raw, level with untrained
    "triplet": [0.40, 0.42, 0.41, 0.43],  # below both
}


def _t_test_p(differences: list[float]) -> float:
    """Two-sided p of the one-sample t-test of mean 0, written out (scipy's t distribution)."""
    stats = pytest.importorskip("scipy.stats")
    n = len(differences)
    mean = sum(differences) / n
    sd = (sum((d - mean) ** 2 for d in differences) / (n - 1)) ** 0.5
    return float(2 * stats.t.sf(abs(mean / (sd / n**0.5)), n - 1))


def test_each_trained_row_against_each_baseline() -> None:
    runs = _retrieval_records(RETRIEVAL)
    random.Random(1).shuffle(runs)
    (table,) = summarise(runs)
    assert table.deterministic == {"raw"}
    against_untrained = compare_to_baseline(table, "untrained")
    assert set(against_untrained) == {"supcon", "contrastive", "triplet"}  # no baseline row
    for row in ("supcon", "contrastive", "triplet"):
        differences = [a - b for a, b in zip(RETRIEVAL[row], RETRIEVAL["untrained"])]
        assert against_untrained[row].p_value == pytest.approx(_t_test_p(differences))
        assert against_untrained[row].mean_difference == pytest.approx(
            sum(differences) / len(differences)
        )
    # raw ran once: every seed of a row is compared with its one value
    against_raw = compare_to_baseline(table, "raw")
    differences = [v - 0.50 for v in RETRIEVAL["contrastive"]]
    assert against_raw["contrastive"].n == 4
    assert against_raw["contrastive"].p_value == pytest.approx(_t_test_p(differences))

    raw_line, untrained_line = baseline_report(table)
    assert raw_line.startswith("- raw (run once, taken as a constant), map@r 0.5000: ")
    assert "2 significantly above: supcon (+0.1540, p " in raw_line
    assert ", contrastive (+0.1150, p " in raw_line
    assert raw_line.endswith(
        "0 not significantly different; 1 significantly below: triplet "
        f"(-0.0850, {_p_text(against_raw['triplet'].p_value)})."
    )
    assert untrained_line.startswith("- untrained, map@r 0.6150: 1 significantly above: supcon")
    assert "1 not significantly different: contrastive;" in untrained_line
    assert "1 significantly below: triplet" in untrained_line
    report = which_loss_report([table])
    assert "**Against the baselines**" in report and raw_line in report and untrained_line in report


def _p_text(p: float | None) -> str:
    assert p is not None
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def test_no_baseline_section_without_a_baseline_or_a_trained_row() -> None:
    (trained_only,) = summarise(
        _retrieval_records({k: v for k, v in RETRIEVAL.items() if k in ("supcon", "triplet")})
    )
    assert baseline_report(trained_only) == []
    assert "Against the baselines" not in which_loss_report([trained_only])
    (baselines_only,) = summarise(
        _retrieval_records({k: v for k, v in RETRIEVAL.items() if k in ("raw", "untrained")})
    )
    assert baseline_report(baselines_only) == []


def test_a_baseline_row_with_too_few_seeds_is_named_not_tested() -> None:
    values = {"untrained": [0.60, 0.62], "supcon": [0.64, 0.66]}
    (table,) = summarise(_retrieval_records(values))
    (line,) = baseline_report(table)
    assert line.endswith("1 not tested (fewer than 3 seeds): supcon.")
    assert "0 significantly above; 0 not significantly different; 0 significantly below" in line


def test_lightgbm_is_a_baseline_of_the_ltr_report() -> None:
    (table,) = summarise(_records(VALUES))
    (line,) = baseline_report(table)
    assert line.startswith("- lightgbm lambdamart, ndcg@10 0.3840: 3 significantly above: ")
    assert "listnet (+0.0530" in line and "mse (+0.0200" in line


def _ndcg_runs(loss: str, values: list[float], seeds: list[int] | None = None) -> list[dict]:
    """Run records of one ltr row with ``ndcg@10`` values (seeds 0, 1, ... unless given)."""
    config = {"task": "ltr", "loss": {"name": loss, "options": {}}, "metrics": ["ndcg@10"]}
    return [
        {
            "suite": "s",
            "dataset": "toy",
            "loss": loss,
            "seed": s,
            "seconds": 1.0,
            "primary": "ndcg@10",
            "config": config,
            "metrics": {"ndcg@10": v},
        }
        for s, v in zip(seeds if seeds is not None else range(len(values)), values)
    ]


def test_a_row_better_on_the_shared_seeds_is_not_called_tied() -> None:
    """The highest mean over a row's own seeds can lose on the seeds both rows ran: the
    report marks the other row ``above`` and makes no recommendation."""
    from rankloss.bench.report import _tied, compare_to_best, recommendation, summarise

    (table,) = summarise(
        _ndcg_runs("listnet", [0.9, 0.50, 0.50, 0.51], [0, 1, 2, 3])
        + _ndcg_runs("ranknet", [0.55, 0.56, 0.575], [1, 2, 3])
    )
    best, comparisons = compare_to_best(table)
    assert best == "listnet" and _tied(comparisons["ranknet"]) == "above"
    text = recommendation(table)
    assert text.startswith("**no recommendation**: ranknet significantly better than listnet")


def test_non_finite_values_are_counted_and_named() -> None:
    """A mean over fewer seeds than the row ran says so in its cell and in the CSV's seeds,
    and a row with no finite value is named in the verdicts, not dropped."""
    from rankloss.bench.report import (
        _csv_text,
        family_comparison,
        markdown_tables,
        recommendation,
        summarise,
    )

    nan = float("nan")
    (table,) = summarise(
        _ndcg_runs("listnet", [0.9, nan, nan]) + _ndcg_runs("ranknet", [0.5, 0.51, 0.52])
    )
    listnet_line = next(l for l in markdown_tables([table]).splitlines() if "| listnet |" in l)
    assert "**0.9000** (2 of 3 non-finite)" in listnet_line
    assert "s,toy,listnet,ndcg@10,0.900000,0.000000,1,1.000" in _csv_text([table])
    assert "no finite ndcg@10 (those seeds are left out) for listnet: 2 of 3 seeds" in (
        recommendation(table)
    )
    (table,) = summarise(
        _ndcg_runs("listnet", [nan] * 3) + _ndcg_runs("ranknet", [0.5, 0.51, 0.52])
    )
    assert "listnet: 3 of 3 seeds" in recommendation(table)
    assert family_comparison(table) == (
        "not enough rows (no listwise row with a finite ndcg@10: listnet)."
    )
    assert "| listnet | non-finite |" in markdown_tables([table])


def test_listwise_vs_pairwise_names_the_means_it_compares() -> None:
    """A seed whose value is not finite leaves the pair; the sentence gives the two means on
    the seeds the difference is over, so it does not contradict the table's means."""
    values = {"ranknet": [0.50, 0.50, 0.51, 0.95], "listnet": [0.60, 0.61, 0.62, 0.0]}
    NAMES["ranknet"] = "ranknet"
    try:
        runs = _records(values)
    finally:
        del NAMES["ranknet"]
    for run in runs:
        if run["loss"] == "listnet" and run["seed"] == 3:
            run["metrics"]["ndcg@10"] = float("nan")
    (table,) = summarise(runs)
    text = family_comparison(table)
    assert "on the 3 seed(s) both have a finite value for (0.6100 and 0.5033)" in text
    assert text.endswith("**listwise is better**.")
