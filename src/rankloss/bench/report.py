"""Turn ``results.json`` runs into tables (Markdown, CSV) and plots (PNG).

Every metric in a table is higher-is-better; each cell is the mean ± sample standard deviation
over seeds (the value alone when one seed gave it), and the best mean in each column is in
bold. Every table also compares each row with the best row on the suite's primary metric,
paired across seeds
(:func:`rankloss.bench.stats.paired_comparison`: the difference with its 95% interval and
p-value); rows not significantly worse than the best are marked ``~`` ("tied with best"),
and a row significantly better than it on the seeds both ran (rows that ran on different
seeds) ``above``.

``results.md`` opens with a "which loss" report: per suite, the rows ranked by the primary
metric with 95% intervals, the recommendation the comparisons support ("use X" or "no
significant difference among X, Y, Z"), the best listwise row against the best pairwise
row (families from the loss registry), paired across seeds, and every trained row against
each baseline that trains no loss (raw features, an untrained network, random, popularity,
LightGBM): significantly above, not different, or below. A tuned benchmark
(:mod:`rankloss.bench.tune`) adds each row's chosen settings.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rankloss._io import atomic_write, atomic_write_text
from rankloss.bench.stats import PairedComparison, mean_interval, paired_comparison

__all__ = [
    "SuiteTable",
    "summarise",
    "markdown_tables",
    "per_class_tables",
    "write_reports",
    "compare_to_best",
    "recommendation",
    "family_comparison",
    "compare_to_baseline",
    "baseline_report",
    "which_loss_report",
    "tuning_tables",
]


@dataclass
class SuiteTable:
    """Aggregated results of one suite."""

    suite: str
    dataset: str
    metrics: list[str]
    rows: list[str]
    mean: dict[tuple[str, str], float]
    std: dict[tuple[str, str], float]
    seeds: dict[str, int]
    seconds: dict[str, float]
    #: The metric rows are ranked and compared by (the suite's primary metric).
    primary: str = ""
    #: ``(row, metric) -> {seed: value}``: the per-seed values the paired tests use.
    per_seed: dict[tuple[str, str], dict[int, float]] = field(default_factory=dict)
    #: Each row's loss family in the registry (``None`` for a baseline that trains no loss).
    families: dict[str, str | None] = field(default_factory=dict)
    #: Rows that do not depend on the seed (``options.deterministic``: they run once).
    deterministic: set[str] = field(default_factory=set)
    #: ``(row, metric) -> count`` of the row's runs whose value of the metric is missing or
    #: not finite (left out of the mean, the std and the paired tests; only counts > 0).
    non_finite: dict[tuple[str, str], int] = field(default_factory=dict)

    def finite_seeds(self, row: str, metric: str) -> int:
        """How many of the row's runs the mean of ``metric`` is over."""
        return self.seeds[row] - self.non_finite.get((row, metric), 0)


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance)


def summarise(runs: Sequence[dict[str, Any]]) -> list[SuiteTable]:
    """Group runs by suite (in first-seen order) and loss, and average over seeds."""
    by_suite: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_suite[run["suite"]].append(run)
    tables = []
    for suite, suite_runs in by_suite.items():
        metrics = list(suite_runs[0]["config"]["metrics"])
        rows: list[str] = []
        values: dict[tuple[str, str], list[float]] = defaultdict(list)
        seconds: dict[str, list[float]] = defaultdict(list)
        non_finite: dict[tuple[str, str], int] = defaultdict(int)
        for run in suite_runs:
            if run["loss"] not in rows:
                rows.append(run["loss"])
            seconds[run["loss"]].append(run["seconds"])
            for metric in metrics:
                value = run["metrics"].get(metric)
                if value is not None and math.isfinite(value):
                    values[(run["loss"], metric)].append(value)
                else:
                    non_finite[(run["loss"], metric)] += 1
        mean, std = {}, {}
        for key, vals in values.items():
            mean[key], std[key] = _mean_std(vals)
        per_seed: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
        families: dict[str, str | None] = {}
        deterministic: set[str] = set()
        for run in suite_runs:
            config = run["config"]
            families.setdefault(
                run["loss"], _family(config.get("task"), config.get("loss", {}).get("name"))
            )
            if config.get("loss", {}).get("options", {}).get("deterministic"):
                deterministic.add(run["loss"])
            for metric in metrics:
                value = run["metrics"].get(metric)
                if value is not None and math.isfinite(value):
                    per_seed[(run["loss"], metric)][int(run["seed"])] = float(value)
        primary = suite_runs[0].get("primary") or suite_runs[0]["config"].get("primary")
        tables.append(
            SuiteTable(
                suite=suite,
                dataset=suite_runs[0]["dataset"],
                metrics=metrics,
                rows=rows,
                mean=mean,
                std=std,
                seeds={row: len(seconds[row]) for row in rows},
                seconds={row: sum(seconds[row]) / len(seconds[row]) for row in rows},
                primary=primary if primary in metrics else metrics[0],
                per_seed=dict(per_seed),
                families=families,
                deterministic=deterministic,
                non_finite=dict(non_finite),
            )
        )
    return tables


def _family(task: str | None, name: str | None) -> str | None:
    """The registry family of the loss a row trains (``None`` for a baseline with no loss)."""
    from rankloss.bench.suites import TASK_SETTINGS
    from rankloss.losses import LOSSES

    if name is None:
        return None
    settings = TASK_SETTINGS.get(task or "")
    if settings is not None and name in settings.baselines:
        name = settings.baselines[name]
        if name is None:
            return None
    return LOSSES.entry(name).family if name in LOSSES else None


def _best_row(table: SuiteTable, metric: str, rows: Sequence[str] | None = None) -> str | None:
    """The row with the highest mean of ``metric`` (the first on a tie)."""
    best, value = None, -math.inf
    for row in table.rows if rows is None else rows:
        mean = table.mean.get((row, metric))
        if mean is not None and mean > value:
            best, value = row, mean
    return best


def _constant(table: SuiteTable, row: str, metric: str) -> float | None:
    """The one value of a row that does not depend on the seed (run once), else ``None``."""
    values = table.per_seed.get((row, metric), {})
    if row in table.deterministic and len(values) == 1:
        return next(iter(values.values()))
    return None


def _paired(table: SuiteTable, row: str, other: str, metric: str) -> PairedComparison:
    """``row - other`` on ``metric`` over the seeds both ran. A row that does not depend on
    the seed (:attr:`SuiteTable.deterministic`, run once) is a constant: every seed of the
    other row is compared with its one value (a one-sample t-test)."""
    a = table.per_seed.get((row, metric), {})
    b = table.per_seed.get((other, metric), {})
    const_a, const_b = _constant(table, row, metric), _constant(table, other, metric)
    if const_b is not None and const_a is None:
        return paired_comparison(list(a.values()), [const_b] * len(a))
    if const_a is not None and const_b is None:
        return paired_comparison([const_a] * len(b), list(b.values()))
    seeds = sorted(set(a) & set(b))
    return paired_comparison([a[s] for s in seeds], [b[s] for s in seeds])


def compare_to_best(
    table: SuiteTable, metric: str | None = None
) -> tuple[str | None, dict[str, PairedComparison]]:
    """The best row on ``metric`` (default: the primary metric) and every other row's paired
    comparison with it (``row - best`` across the seeds both ran; a row run once is a
    constant, see :func:`_paired`)."""
    metric = metric or table.primary or table.metrics[0]
    best = _best_row(table, metric)
    if best is None:
        return None, {}
    return best, {
        row: _paired(table, row, best, metric)
        for row in table.rows
        if row != best and (row, metric) in table.mean
    }


def _worse(comparison: PairedComparison) -> bool:
    """Significantly worse than the row it was compared with."""
    return comparison.significant and comparison.mean_difference < 0


def _better(comparison: PairedComparison) -> bool:
    """Significantly better than the row it was compared with: possible against the row of
    the highest mean when the two ran on different seeds (the test pairs the shared ones)."""
    return comparison.significant and comparison.mean_difference > 0


def _number(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def _difference(comparison: PairedComparison) -> str:
    if not comparison.tested:
        return f"{comparison.mean_difference:+.4f} (n/a)"
    return f"{comparison.mean_difference:+.4f} [{comparison.low:+.4f}, {comparison.high:+.4f}]"


def _p(comparison: PairedComparison) -> str:
    if comparison.p_value is None:
        return "n/a"
    return "<0.001" if comparison.p_value < 0.001 else f"{comparison.p_value:.3f}"


def _p_phrase(comparison: PairedComparison) -> str:
    """``"p = 0.012"``, ``"p < 0.001"`` or ``"p n/a"``."""
    p = comparison.p_value
    if p is None:
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _tied(comparison: PairedComparison | None) -> str:
    if comparison is None:
        return "~"  # the best row itself
    if not comparison.tested:
        return "n/a"
    if _better(comparison):
        return "above"  # better than the best row on the seeds both ran
    return "" if _worse(comparison) else "~"


def _non_finite_note(table: SuiteTable, metric: str) -> str:
    """``"; no finite ndcg@10 (those seeds are left out) for X: 2 of 3 seeds"`` for the rows
    whose ``metric`` is missing or not finite on some seed, or ``""``."""
    rows = [
        f"{row}: {table.non_finite[(row, metric)]} of {table.seeds[row]} seeds"
        for row in table.rows
        if table.non_finite.get((row, metric))
    ]
    if not rows:
        return ""
    return f"; no finite {metric} (those seeds are left out) for {', '.join(rows)}"


def recommendation(table: SuiteTable) -> str:
    """The recommendation the paired comparisons with the best row support (see
    :func:`_recommendation`), naming the rows whose metric was not finite on some seed."""
    metric = table.primary or table.metrics[0]
    return _recommendation(table).removesuffix(".") + _non_finite_note(table, metric) + "."


def _recommendation(table: SuiteTable) -> str:
    """The recommendation the paired comparisons with the best row support: ``"use X"`` when
    every other row is significantly worse, else ``"no significant difference among X, Y,
    ..."`` (the best and the rows not significantly worse); rows with fewer than 3 paired seeds
    are named as not tested. A row significantly better than the best on the seeds both ran
    (rows with different seed sets) gives no recommendation, saying why."""
    metric = table.primary or table.metrics[0]
    best, comparisons = compare_to_best(table)
    if best is None:
        return f"no row reports {metric}."
    if not comparisons:
        return f"only one row ({best}): nothing to compare."
    order = sorted(comparisons, key=lambda r: -table.mean[(r, metric)])  # highest mean first
    tested = [r for r in order if comparisons[r].tested]
    better = [r for r in tested if _better(comparisons[r])]
    tied = [best] + [r for r in tested if not _worse(comparisons[r]) and r not in better]
    worse = [r for r in tested if _worse(comparisons[r])]
    untested = [r for r in order if not comparisons[r].tested]
    if better:
        return (
            f"**no recommendation**: {', '.join(better)} significantly better than {best} on "
            f"{metric} on the seeds both ran, although {best} has the highest mean over its "
            "own seeds: the rows have values on different seeds (seeds not run, or with a "
            "non-finite value); run or fix the missing seeds to compare them."
        )
    if not worse and len(tied) == 1:
        return (
            f"not enough seeds to tell the rows apart (a paired test needs at least 3 seeds "
            f"per row); the highest mean {metric} is {best}'s."
        )
    if len(tied) == 1:
        text = f"**use {best}**: every other row is significantly worse on {metric}"
    else:
        text = (
            f"**no significant difference among {', '.join(tied)}** on {metric} "
            f"(none is significantly worse than {best}, the highest mean)"
        )
        if worse:
            text += f"; {', '.join(worse)} significantly worse"
    if untested:
        text += f"; {', '.join(untested)} not tested (fewer than 3 paired seeds)"
    return text + "."


def family_comparison(table: SuiteTable) -> str:
    """The best listwise row against the best pairwise row (registry families) on the primary
    metric, paired across seeds: the difference, its 95% interval and p-value, or "not enough
    rows" when the suite lacks one of the two families."""
    metric = table.primary or table.metrics[0]
    listwise = [r for r in table.rows if table.families.get(r) == "listwise"]
    pairwise = [r for r in table.rows if table.families.get(r) == "pairwise"]
    best_list = _best_row(table, metric, listwise)
    best_pair = _best_row(table, metric, pairwise)
    if best_list is None or best_pair is None:
        sides = (("listwise", listwise, best_list), ("pairwise", pairwise, best_pair))
        absent = [family for family, rows, _ in sides if not rows]
        reasons = [f"no {' and no '.join(absent)} row"] if absent else []
        reasons += [
            f"no {family} row with a finite {metric}: {', '.join(rows)}"
            for family, rows, best in sides
            if rows and best is None
        ]
        return f"not enough rows ({'; '.join(reasons)})."
    c = _paired(table, best_list, best_pair, metric)
    head = (
        f"best listwise ({best_list}, {table.mean[(best_list, metric)]:.4f}) minus best "
        f"pairwise ({best_pair}, {table.mean[(best_pair, metric)]:.4f})"
    )
    a = table.per_seed.get((best_list, metric), {})
    b = table.per_seed.get((best_pair, metric), {})
    shared = sorted(set(a) & set(b))
    both_vary = _constant(table, best_list, metric) is None and (
        _constant(table, best_pair, metric) is None
    )
    if both_vary and shared and len(shared) < max(len(a), len(b)):
        # The difference is over the seeds both ran: say what the two means are there.
        head += (
            f" on the {len(shared)} seed(s) both have a finite value for "
            f"({sum(a[s] for s in shared) / len(shared):.4f} and "
            f"{sum(b[s] for s in shared) / len(shared):.4f})"
        )
    if not c.tested:
        return (
            f"{head} = {c.mean_difference:+.4f} over {c.n} paired seed(s): n/a (a paired test "
            "needs at least 3 seeds)."
        )
    if not c.significant:
        verdict = "no significant difference"
    else:
        verdict = "listwise is better" if c.mean_difference > 0 else "pairwise is better"
    return (
        f"{head} = {c.mean_difference:+.4f}, 95% CI [{c.low:+.4f}, {c.high:+.4f}], "
        f"{_p_phrase(c)} ({c.method}, {c.n} seeds): **{verdict}**."
    )


def compare_to_baseline(
    table: SuiteTable, baseline: str, metric: str | None = None
) -> dict[str, PairedComparison]:
    """Every row that trains a loss against ``baseline`` on ``metric`` (default: the primary
    metric): ``row - baseline``, paired across the seeds both ran. A baseline that does not
    depend on the seed (:attr:`SuiteTable.deterministic`, run once) is a constant: each seed
    of the row is compared with its one value (a one-sample t-test)."""
    metric = metric or table.primary or table.metrics[0]
    if not table.per_seed.get((baseline, metric)):
        return {}
    return {
        row: _paired(table, row, baseline, metric)
        for row in table.rows
        if table.families.get(row) is not None and (row, metric) in table.mean
    }


def baseline_report(table: SuiteTable) -> list[str]:
    """One line per baseline row (a row that trains no loss: raw features, an untrained
    network, random or popularity rankings, LightGBM, zero-shot) with the rows that train a
    loss sorted into significantly above it, not significantly different and significantly
    below it on the primary metric (:func:`compare_to_baseline`); empty without a baseline
    or without a trained row."""
    metric = table.primary or table.metrics[0]
    lines = []
    for baseline in table.rows:
        if table.families.get(baseline) is not None or (baseline, metric) not in table.mean:
            continue
        comparisons = compare_to_baseline(table, baseline, metric)
        if not comparisons:
            continue
        order = sorted(comparisons, key=lambda r: -table.mean[(r, metric)])
        groups: dict[str, list[str]] = {"above": [], "tied": [], "below": [], "untested": []}
        for row in order:
            c = comparisons[row]
            if not c.tested:
                groups["untested"].append(row)
            elif not c.significant:
                groups["tied"].append(row)
            else:
                key = "above" if c.mean_difference > 0 else "below"
                groups[key].append(f"{row} ({c.mean_difference:+.4f}, {_p_phrase(c)})")
        parts = [
            f"{len(groups[key])} {label}" + (f": {', '.join(groups[key])}" if groups[key] else "")
            for key, label in (
                ("above", "significantly above"),
                ("tied", "not significantly different"),
                ("below", "significantly below"),
            )
        ]
        if groups["untested"]:
            parts.append(
                f"{len(groups['untested'])} not tested (fewer than 3 seeds): "
                + ", ".join(groups["untested"])
            )
        constant = " (run once, taken as a constant)" if baseline in table.deterministic else ""
        lines.append(
            f"- {baseline}{constant}, {metric} {table.mean[(baseline, metric)]:.4f}: "
            + "; ".join(parts)
            + "."
        )
    return lines


def which_loss_report(tables: Sequence[SuiteTable]) -> str:
    """Per suite: the rows ranked by the primary metric (test mean over seeds, 95% t
    interval), each compared with the best row, the recommendation and the listwise-vs-pairwise
    answer (Markdown)."""
    parts = []
    for table in tables:
        metric = table.primary or table.metrics[0]
        best, comparisons = compare_to_best(table)
        ranked = sorted(
            (r for r in table.rows if (r, metric) in table.mean),
            key=lambda r: -table.mean[(r, metric)],
        )
        lines = [
            f"### {table.suite} ({table.dataset}): ranked by {metric}",
            "",
            f"| rank | loss | {metric} | 95% CI | vs best [95% CI] | p | tied with best |",
            "|---:|---|---:|---|---|---:|:---:|",
        ]
        for rank, row in enumerate(ranked, 1):
            values = list(table.per_seed.get((row, metric), {}).values())
            mean, low, high = mean_interval(values)
            interval = f"[{low:.4f}, {high:.4f}]" if math.isfinite(low) else "n/a"
            comparison = comparisons.get(row)
            versus = "best" if comparison is None else _difference(comparison)
            p = "" if comparison is None else _p(comparison)
            lines.append(
                f"| {rank} | {row} | {mean:.4f} | {interval} | {versus} | {p} | "
                f"{_tied(comparison)} |"
            )
        lines += [
            "",
            f"**Recommendation:** {recommendation(table)}",
            "",
            f"**Listwise vs pairwise:** {family_comparison(table)}",
        ]
        against = baseline_report(table)
        if against:
            lines += [
                "",
                "**Against the baselines** (each row that trains a loss against each row "
                "that trains none, paired across seeds, two-sided p < 0.05):",
                "",
                *against,
            ]
        parts.append("\n".join(lines))
    note = (
        "Test metrics, mean over seeds with the 95% t interval. Each row is compared with the "
        "best row paired across seeds (same seed, same data; `rankloss.bench.stats`): the "
        "difference row - best with its 95% interval and the two-sided p-value; `~` marks "
        "rows not significantly worse than the best (p >= 0.05), `above` rows significantly "
        "better than it on the seeds both ran (rows run on different seeds), `n/a` rows with "
        "fewer than 3 paired seeds. The best row is chosen after seeing the results and there "
        'is no correction for testing several rows, so read `~` as "cannot be told apart", '
        'not as "equal".'
    )
    return "## Which loss?\n\n" + note + "\n\n" + "\n\n".join(parts) + "\n"


def _best(table: SuiteTable, metric: str) -> float | None:
    values = [table.mean[(row, metric)] for row in table.rows if (row, metric) in table.mean]
    return max(values) if values else None


def markdown_tables(tables: Sequence[SuiteTable]) -> str:
    """One Markdown table per suite; best mean per column in bold; each row's paired
    comparison with the best row on the primary metric (difference [95% CI], p-value) and
    ``~`` when it is not significantly worse ("tied with best")."""
    parts = []
    for table in tables:
        primary = table.primary or table.metrics[0]
        _, comparisons = compare_to_best(table)
        header = [
            "loss",
            *table.metrics,
            "seeds",
            "s/run",
            f"vs best {primary} [95% CI]",
            "p",
            "tied with best",
        ]
        lines = [
            f"### {table.suite} ({table.dataset})",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
        ]
        for row in table.rows:
            cells = [row]
            for metric in table.metrics:
                missing = table.non_finite.get((row, metric), 0)
                if (row, metric) not in table.mean:
                    cells.append("non-finite" if missing else "–")
                    continue
                m, s = table.mean[(row, metric)], table.std[(row, metric)]
                # One value has no spread: the cell shows the value alone, not "± 0.0000".
                one = table.finite_seeds(row, metric) < 2
                text = f"{m:.4f}" if one else f"{m:.4f} ± {s:.4f}"
                text = f"**{text}**" if m == _best(table, metric) else text
                if missing:  # the mean is over the finite values only: say so in the cell
                    text += f" ({missing} of {table.seeds[row]} non-finite)"
                cells.append(text)
            cells += [str(table.seeds[row]), f"{table.seconds[row]:.1f}"]
            if (row, primary) in table.mean:
                comparison = comparisons.get(row)
                cells += [
                    "best" if comparison is None else _difference(comparison),
                    "" if comparison is None else _p(comparison),
                    _tied(comparison),
                ]
            else:
                cells += ["–", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def per_class_tables(runs: Sequence[dict[str, Any]]) -> str:
    """Per-class recall and precision (mean over seeds) of the suites that report them."""
    by_suite: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        if any(k.startswith("recall/") for k in run.get("extra_metrics", {})):
            by_suite[run["suite"]].append(run)
    parts = []
    for suite, suite_runs in by_suite.items():
        classes = sorted(
            {
                k.split("/", 1)[1]
                for r in suite_runs
                for k in r["extra_metrics"]
                if k.startswith("recall/")
            },
            key=lambda c: (len(c), c),
        )
        rows: dict[str, list[dict[str, float]]] = defaultdict(list)
        for run in suite_runs:
            rows[run["loss"]].append(run["extra_metrics"])
        lines = [
            f"### {suite}: per-class recall / precision (mean over seeds)",
            "",
            "| loss | " + " | ".join(f"class {c}" for c in classes) + " |",
            "|---|" + "---:|" * len(classes),
        ]
        for loss, extras in rows.items():
            cells = []
            for c in classes:
                rec = sum(e.get(f"recall/{c}", math.nan) for e in extras) / len(extras)
                pre = sum(e.get(f"precision/{c}", math.nan) for e in extras) / len(extras)
                cells.append(f"{rec:.2f} / {pre:.2f}")
            lines.append(f"| {loss} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + ("\n" if parts else "")


def _csv_text(tables: Sequence[SuiteTable]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["suite", "dataset", "loss", "metric", "mean", "std", "seeds", "seconds"])
    for table in tables:
        for row in table.rows:
            for metric in table.metrics:
                if (row, metric) in table.mean:
                    writer.writerow(
                        [
                            table.suite,
                            table.dataset,
                            row,
                            metric,
                            f"{table.mean[(row, metric)]:.6f}",
                            f"{table.std[(row, metric)]:.6f}",
                            table.finite_seeds(row, metric),
                            f"{table.seconds[row]:.3f}",
                        ]
                    )
    return buffer.getvalue()


def _bar_limits(means: Sequence[float], errors: Sequence[float]) -> tuple[float, float] | None:
    """The x range of a bar plot: the bars' span (mean ± std) with 5% padding, starting at 0
    unless the span is far from it; ``None`` when no mean is finite."""
    finite = [(m, e) for m, e in zip(means, errors) if math.isfinite(m)]
    if not finite:
        return None
    low = min(m - e for m, e in finite)
    high = max(m + e for m, e in finite)
    pad = 0.05 * (high - low) + 1e-3
    start = max(0.0, low - pad)
    if start < 0.25 * high:  # close to 0 anyway: show the whole bars
        start = 0.0
    return start, (min(1.0, high + pad) if high <= 1.0 else high + pad)


def curve_over_seeds(
    histories: Sequence[Sequence[dict[str, float]]], key: str, *, relative: bool = False
) -> tuple[list[float], list[float], list[float], list[float]]:
    """``(epochs, mean, low, high)`` of ``key`` over the seeds' histories, per epoch.

    Only epochs every history reached are kept. ``relative=True`` divides each history by its
    first value (training losses of different scales compare). ``low``/``high`` are the
    minimum and maximum over seeds.
    """
    series: list[dict[float, float]] = []
    for history in histories:
        points = {
            float(h.get("epoch", i + 1)): float(h[key]) for i, h in enumerate(history) if key in h
        }
        if relative and points:
            first = points[min(points)]
            if first != 0.0:
                points = {e: v / first for e, v in points.items()}
        if points:
            series.append(points)
    if not series:
        return [], [], [], []
    epochs = sorted(set.intersection(*(set(s) for s in series)))
    values = [[s[e] for s in series] for e in epochs]
    return (
        epochs,
        [sum(v) / len(v) for v in values],
        [min(v) for v in values],
        [max(v) for v in values],
    )


def _plot_bars(table: SuiteTable, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = len(table.metrics)
    fig, axes = plt.subplots(
        1, cols, figsize=(3.2 * cols, 0.45 * len(table.rows) + 1.6), squeeze=False, sharey=True
    )
    positions = list(range(len(table.rows)))
    for ax, metric in zip(axes[0], table.metrics):
        means = [table.mean.get((row, metric), float("nan")) for row in table.rows]
        errors = [table.std.get((row, metric), 0.0) for row in table.rows]
        ax.barh(positions, means, xerr=errors, color="#4c72b0", ecolor="black", capsize=3)
        ax.set_title(metric)
        limits = _bar_limits(means, errors)
        if limits is not None:
            ax.set_xlim(limits[0], limits[1])
            if limits[0] > 0:  # a cut axis exaggerates differences: say so on the plot
                ax.set_xlabel(f"axis cut: starts at {limits[0]:.3g}", color="#b03030")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(positions, table.rows)
    axes[0][0].invert_yaxis()
    fig.suptitle(f"{table.suite} ({table.dataset}): mean ± std over seeds")
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110))
    plt.close(fig)


def _plot_curves(suite: str, runs: Sequence[dict[str, Any]], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, list[list[dict[str, float]]]] = {}
    primary = "metric"
    for run in runs:
        if run["suite"] == suite and run.get("history"):
            curves.setdefault(run["loss"], []).append(run["history"])
            primary = run.get("primary") or _primary_of(suite) or primary
    if not curves:
        return False
    seeds = max(len(h) for h in curves.values())
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), squeeze=False)
    titles = {
        "train_loss": "training loss / its first-epoch value",
        "validation": f"validation {primary}",
    }
    for ax, key in zip(axes[0], titles):
        for label, histories in curves.items():
            epochs, mean, low, high = curve_over_seeds(histories, key, relative=key == "train_loss")
            if epochs:
                (line,) = ax.plot(epochs, mean, marker=".", label=label)
                if len(histories) > 1:
                    ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.15)
        ax.set_xlabel("epoch")
        band = f"mean of {seeds} seeds, band min-max" if seeds > 1 else "one seed"
        ax.set_title(f"{titles[key]} ({band})", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in reversed(axes[0]):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
            break
    fig.suptitle(f"{suite}: training curves")
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=100))
    plt.close(fig)
    return True


def _primary_of(suite: str) -> str | None:
    from rankloss.bench.suites import SUITES

    spec = SUITES.get(suite)
    return spec.primary if spec is not None else None


def _dimension(dim: Sequence[Any]) -> str:
    if dim[0] == "choice":
        return "{" + ", ".join(str(c) for c in dim[1]) + "}"
    return f"{dim[0]} [{dim[1]:g}, {dim[2]:g}]"


def tuning_tables(entries: Sequence[dict[str, Any]]) -> str:
    """Per suite, each tuned row's chosen settings, its best validation score (the primary
    metric on the validation split), the trials run and the seconds per trial, and the space
    searched (Markdown; the ``tuning.json`` entries of :class:`rankloss.bench.tune.Tuner`)."""
    by_suite: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_suite[entry["suite"]].append(entry)
    parts = []
    for suite, rows in by_suite.items():
        primary = rows[0].get("primary", "")
        requested = max(int(r.get("trials_requested", 0)) for r in rows)
        lines = [
            f"### {suite}: tuned settings ({requested} seeded TPE trials per row, chosen by "
            f"validation {primary})",
            "",
            f"| loss | chosen settings | best validation {primary} | trials | s/trial | searched |",
            "|---|---|---:|---:|---:|---|",
        ]
        for entry in rows:
            space = entry.get("space", {})
            searched = ", ".join(
                f"{name} {_dimension(dim)}"
                for target in ("budget", "hyper")
                for name, dim in space.get(target, {}).items()
            )
            trials = entry.get("trials", [])
            complete = sum(1 for trial in trials if trial.get("value") is not None)
            best = entry.get("best")
            if best:
                chosen = ", ".join(
                    f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
                    for target in ("budget", "hyper")
                    for name, value in best["setting"].get(target, {}).items()
                )
                score = f"{best['value']:.4f} (trial {best['number'] + 1})"
            else:
                status = entry.get("status", "")
                note = entry.get("note", "")
                chosen = f"defaults ({status}{': ' + note if note else ''})"
                score = "–"
            per_trial = entry.get("seconds_per_trial")
            lines.append(
                f"| {entry['row']} | {chosen} | {score} | {complete}/{len(trials)} | "
                + (f"{per_trial:.1f}" if per_trial is not None else "–")
                + f" | {searched or '–'} |"
            )
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + ("\n" if parts else "")


def write_reports(
    out: str | Path,
    runs: Sequence[dict[str, Any]],
    *,
    plots: bool = True,
    tuning: Sequence[dict[str, Any]] | None = None,
) -> list[Path]:
    """Write ``results.md``, ``results.csv`` and PNG plots into ``out``; return the paths.

    ``results.md`` opens with the "which loss" report (:func:`which_loss_report`), then the
    tables, the per-class tables and, with ``tuning`` (the entries of a tuned benchmark), the
    chosen settings (:func:`tuning_tables`).
    """
    out = Path(out)
    tables = summarise(runs)
    per_class = per_class_tables(runs)
    tuned = tuning_tables(tuning) if tuning else ""
    written = [
        atomic_write_text(
            out / "results.md",
            "# rankloss bench results\n\n"
            + (which_loss_report(tables) + "\n## Tables\n\n" if tables else "")
            + markdown_tables(tables)
            + ("\n" + per_class if per_class else "")
            + ("\n## Tuning\n\n" + tuned if tuned else ""),
        ),
        atomic_write_text(out / "results.csv", _csv_text(tables)),
    ]
    if plots:
        for table in tables:
            bars = out / f"{table.suite}_metrics.png"
            _plot_bars(table, bars)
            written.append(bars)
            curves = out / f"{table.suite}_curves.png"
            if _plot_curves(table.suite, runs, curves):
                written.append(curves)
    return written
