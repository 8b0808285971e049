"""Turn ``results.json`` runs into tables (Markdown, CSV) and plots (PNG).

Every metric in a table is higher-is-better; each cell is the mean ± sample standard deviation
over seeds, and the best mean in each column is in bold.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankloss._io import atomic_write, atomic_write_text

__all__ = ["SuiteTable", "summarise", "markdown_tables", "per_class_tables", "write_reports"]


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
        for run in suite_runs:
            if run["loss"] not in rows:
                rows.append(run["loss"])
            seconds[run["loss"]].append(run["seconds"])
            for metric in metrics:
                value = run["metrics"].get(metric)
                if value is not None and math.isfinite(value):
                    values[(run["loss"], metric)].append(value)
        mean, std = {}, {}
        for key, vals in values.items():
            mean[key], std[key] = _mean_std(vals)
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
            )
        )
    return tables


def _best(table: SuiteTable, metric: str) -> float | None:
    values = [table.mean[(row, metric)] for row in table.rows if (row, metric) in table.mean]
    return max(values) if values else None


def markdown_tables(tables: Sequence[SuiteTable]) -> str:
    """One Markdown table per suite; best mean per column in bold."""
    parts = []
    for table in tables:
        header = ["loss", *table.metrics, "seeds", "s/run"]
        lines = [
            f"### {table.suite} ({table.dataset})",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
        ]
        for row in table.rows:
            cells = [row]
            for metric in table.metrics:
                if (row, metric) not in table.mean:
                    cells.append("–")
                    continue
                m, s = table.mean[(row, metric)], table.std[(row, metric)]
                text = f"{m:.4f} ± {s:.4f}"
                cells.append(f"**{text}**" if m == _best(table, metric) else text)
            cells += [str(table.seeds[row]), f"{table.seconds[row]:.1f}"]
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
                            table.seeds[row],
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


def write_reports(
    out: str | Path, runs: Sequence[dict[str, Any]], *, plots: bool = True
) -> list[Path]:
    """Write ``results.md``, ``results.csv`` and PNG plots into ``out``; return the paths."""
    out = Path(out)
    tables = summarise(runs)
    per_class = per_class_tables(runs)
    written = [
        atomic_write_text(
            out / "results.md",
            "# rankloss bench results\n\n"
            + markdown_tables(tables)
            + ("\n" + per_class if per_class else ""),
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
