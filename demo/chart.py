"""The PNG the demo leaves behind: label shares over time, with the alerts marked."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from demo.database import Alert, LabelSeries
from stream_core.contract import LABELS

COLOURS = {"negative": "#d62728", "neutral": "#9e9e9e", "positive": "#2ca02c"}


def _plot_shares(
    axes: Axes,
    series: LabelSeries,
    bucket_s: int,
    title: str,
    *,
    alerts: list[Alert],
    origin: datetime,
) -> None:
    """Stacked bars, one per bucket, as wide as the bucket: honest even for a single minute."""

    def seconds(moment: datetime) -> float:
        return (moment - origin).total_seconds()

    starts = [seconds(t) for t in series]
    bottoms = [0.0] * len(starts)
    for label in LABELS:
        shares = [counts.get(label, 0) / (sum(counts.values()) or 1) for counts in series.values()]
        axes.bar(
            starts,
            shares,
            width=bucket_s,
            bottom=bottoms,
            align="edge",
            color=COLOURS[label],
            label=label,
            edgecolor="white",
            linewidth=0.3,
        )
        bottoms = [b + s for b, s in zip(bottoms, shares, strict=True)]
    for number, alert in enumerate(alerts):
        axes.axvspan(
            seconds(alert.window_start),
            seconds(alert.resolved_at or alert.window_end),
            facecolor="none",
            edgecolor="black",
            hatch="//",
            linewidth=0.8,
            label="alert (window to resolution)" if number == 0 else None,
        )
        axes.axvline(
            seconds(alert.detected_at),
            color="black",
            linestyle="--",
            linewidth=1.5,
            label="alert fired" if number == 0 else None,
        )
    axes.set_title(title, loc="left", fontsize=10)
    axes.set_ylim(0, 1)
    axes.set_ylabel("share of posts")
    if series or alerts:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)


def write_chart(
    path: Path, fine: LabelSeries, fine_s: int, minutes: LabelSeries, alerts: list[Alert]
) -> Path:
    """Two panels: per-``fine_s`` shares from scored_posts, per-minute from the aggregates."""
    starts = [*fine, *minutes]
    origin = min(starts) if starts else datetime.now().astimezone()
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 7), sharex=True, constrained_layout=True
    )
    figure.suptitle(f"sentiment-stream demo: label mix over time (from {origin:%H:%M:%S %Z})")
    _plot_shares(
        top, fine, fine_s, f"every {fine_s} s (scored_posts)", alerts=alerts, origin=origin
    )
    _plot_shares(
        bottom, minutes, 60, "per minute (sentiment_minute_counts)", alerts=alerts, origin=origin
    )
    bottom.set_xlabel(f"seconds after {origin:%H:%M:%S}")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
