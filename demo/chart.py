"""The PNG the demo leaves behind: label shares over time, with the alerts marked."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from demo.database import Alert, LabelSeries
from sentiment_stream.contract import LABELS

COLOURS = {"negative": "#d62728", "neutral": "#9e9e9e", "positive": "#2ca02c"}


def _plot_shares(
    axes: Axes, series: LabelSeries, title: str, alerts: list[Alert], origin: datetime
) -> None:
    def seconds(moment: datetime) -> float:
        return (moment - origin).total_seconds()

    times = list(series)
    totals = [sum(series[t].values()) or 1 for t in times]
    shares = [
        [series[t].get(label, 0) / total for t, total in zip(times, totals, strict=True)]
        for label in LABELS
    ]
    if times:
        axes.stackplot(
            [seconds(t) for t in times],
            shares,
            labels=LABELS,
            colors=[COLOURS[x] for x in LABELS],
            alpha=0.85,
            step="post",
        )
    for number, alert in enumerate(alerts):
        axes.axvspan(
            seconds(alert.window_start),
            seconds(alert.resolved_at or alert.window_end),
            color="black",
            alpha=0.12,
            label="alert (window to resolution)" if number == 0 else None,
        )
        axes.axvline(
            seconds(alert.detected_at),
            color="black",
            linestyle="--",
            linewidth=1.2,
            label="alert fired" if number == 0 else None,
        )
    axes.set_title(title, loc="left", fontsize=10)
    axes.set_ylim(0, 1)
    axes.set_ylabel("share of posts")
    if times or alerts:
        axes.legend(loc="upper left", fontsize=8, ncols=5)


def write_chart(
    path: Path, fine: LabelSeries, fine_s: int, minutes: LabelSeries, alerts: list[Alert]
) -> Path:
    """Two panels: per-``fine_s`` shares from scored_posts, per-minute from the aggregates."""
    starts = [*fine, *minutes]
    origin = min(starts) if starts else datetime.now().astimezone()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), constrained_layout=True)
    figure.suptitle(f"sentiment-stream demo: label mix over time (from {origin:%H:%M:%S %Z})")
    _plot_shares(top, fine, f"every {fine_s} s (scored_posts)", alerts, origin)
    _plot_shares(bottom, minutes, "per minute (sentiment_minute_counts)", alerts, origin)
    bottom.set_xlabel("seconds")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
