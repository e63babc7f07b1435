"""`monitor report`: online quality, drift and the label mix over time, as a PNG or an HTML page
(the same figure, plus tables of the latest figures), drawn with matplotlib from PostgreSQL."""

from __future__ import annotations

import base64
import html
import io
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt
import psycopg

from storage.drift import DriftReport, reports_over_time
from storage.quality import WindowQuality, quality_over_time
from storage.urls import libpq_url


@dataclass(frozen=True)
class ReportData:
    since: datetime
    until: datetime
    window: str  # the drift window drawn
    quality: list[WindowQuality]
    drift: list[DriftReport]
    reference_macro_recall: float | None
    psi_threshold: float


def read_report_data(
    database_url: str,
    *,
    since: datetime,
    until: datetime,
    window: str,
    reference_macro_recall: float | None,
    psi_threshold: float,
) -> ReportData:
    bucket = max(timedelta(minutes=1), (until - since) / 48)  # about 48 points per line
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        quality = quality_over_time(conn, since=since, until=until, bucket=bucket)
        drift = reports_over_time(conn, window, since, until)
    return ReportData(since, until, window, quality, drift, reference_macro_recall, psi_threshold)


def draw(data: ReportData) -> bytes:
    """The three panels as PNG bytes."""
    figure, (quality_axes, drift_axes, mix_axes) = plt.subplots(3, 1, figsize=(11, 11), sharex=True)
    by_version: dict[str, list[WindowQuality]] = defaultdict(list)
    for point in data.quality:
        by_version[point.model_version].append(point)
    for version, points in sorted(by_version.items()):
        quality_axes.plot(
            [p.since for p in points], [p.macro_recall for p in points], marker="o", label=version
        )
    if data.reference_macro_recall is not None:
        quality_axes.axhline(
            data.reference_macro_recall, color="black", linestyle="--", label="offline reference"
        )
    quality_axes.set_ylabel("online macro recall")
    quality_axes.set_ylim(0, 1)
    quality_axes.set_title("Online quality (late gold labels, by label arrival)")
    _legend(quality_axes)

    by_feature: dict[str, list[DriftReport]] = defaultdict(list)
    for report in data.drift:
        by_feature[report.feature].append(report)
    for feature, reports in sorted(by_feature.items()):
        drift_axes.plot([r.computed_at for r in reports], [r.psi for r in reports], label=feature)
    drift_axes.axhline(data.psi_threshold, color="red", linestyle="--", label="threshold")
    drift_axes.set_yscale("symlog", linthresh=0.1)
    drift_axes.set_ylabel("PSI")
    drift_axes.set_title(f"Drift per feature ({data.window} window) against the reference")
    _legend(drift_axes)

    mix = by_feature.get("label", [])
    if mix:
        labels = [str(b) for b in mix[0].details["bins"]]
        times = [r.computed_at for r in mix]
        shares = [[r.details["online"][i] for r in mix] for i in range(len(labels))]
        mix_axes.stackplot(times, shares, labels=labels, alpha=0.8)
        cumulative = 0.0
        for share in mix[-1].details["reference"][:-1]:
            cumulative += share
            mix_axes.axhline(cumulative, color="black", linestyle=":", linewidth=1)
    mix_axes.set_ylim(0, 1)
    mix_axes.set_ylabel("share of posts")
    mix_axes.set_title("Predicted label mix (dotted: the reference's)")
    _legend(mix_axes)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def _legend(axes: Any) -> None:
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper left", fontsize="small", ncol=3)
    else:
        axes.text(0.5, 0.5, "no data in this range", ha="center", transform=axes.transAxes)


def _html(data: ReportData, png: bytes) -> str:
    latest_quality = {q.model_version: q for q in data.quality}  # oldest first: the last wins
    latest_drift = {r.feature: r for r in data.drift}
    rows_q = "".join(
        f"<tr><td>{html.escape(v)}</td><td>{q.total}</td><td>{_f(q.macro_recall)}</td>"
        f"<td>{_f(q.accuracy)}</td></tr>"
        for v, q in sorted(latest_quality.items())
    )
    rows_d = "".join(
        f"<tr><td>{html.escape(f)}</td><td>{r.psi:.3f}</td><td>{r.js_distance:.3f}</td>"
        f"<td>{'yes' if r.psi > data.psi_threshold else ''}</td></tr>"
        for f, r in sorted(latest_drift.items())
    )
    image = base64.b64encode(png).decode()
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>sentiment-stream model monitoring</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:right}}</style>
</head><body>
<h1>Model monitoring, {data.since:%Y-%m-%d %H:%M} to {data.until:%Y-%m-%d %H:%M} UTC</h1>
<p>Offline reference macro recall: {_f(data.reference_macro_recall)};
PSI threshold {data.psi_threshold}. docs/monitoring.md says what each figure means.</p>
<h2>Online quality, last bucket</h2>
<table><tr><th>model version</th><th>labelled</th><th>macro recall</th><th>accuracy</th></tr>
{rows_q or '<tr><td colspan="4">no gold labels in this range</td></tr>'}</table>
<h2>Drift, last computation ({html.escape(data.window)} window)</h2>
<table><tr><th>feature</th><th>PSI</th><th>JS distance</th><th>over threshold</th></tr>
{rows_d or '<tr><td colspan="4">no drift measured in this range</td></tr>'}</table>
<img alt="quality, drift and label mix over time" src="data:image/png;base64,{image}">
</body></html>
"""


def _f(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def write_report(data: ReportData, out: Path) -> Path:
    """Write ``out`` as PNG (``.png``) or an HTML page with the figure inside (``.html``)."""
    png = draw(data)
    if out.suffix.lower() == ".png":
        out.write_bytes(png)
    elif out.suffix.lower() in {".html", ".htm"}:
        out.write_text(_html(data, png), encoding="utf-8")
    else:
        raise ValueError(f"{out}: the report is written as .html or .png")
    return out
