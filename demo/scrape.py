"""Read the consumer's Prometheus ``/metrics`` into the few figures the demo shows."""

from __future__ import annotations

import math
import time
import urllib.request
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from stream_core.contract import LABELS

LATENCY = "sentiment_end_to_end_latency_seconds"


@dataclass(frozen=True)
class MetricsSnapshot:
    """Cumulative counters at ``taken_at`` (monotonic seconds)."""

    taken_at: float
    predictions: Mapping[str, float] = field(default_factory=dict)  # by label
    rows_written: float = 0.0
    dead_letters: float = 0.0
    lag: float = 0.0
    alerts: float = 0.0
    alert_active: bool = False
    negative_share: float | None = None
    # Cumulative end-to-end latency histogram: upper bound -> count (all sources summed).
    latency_buckets: Mapping[float, float] = field(default_factory=dict)
    # Model monitoring (the elected replica's gauges): window -> (macro recall, labelled posts)
    # and window -> (highest PSI, its feature).
    quality: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    drift: Mapping[str, tuple[float, str]] = field(default_factory=dict)

    @property
    def scored(self) -> float:
        return sum(self.predictions.values())


def parse(text: str, taken_at: float) -> MetricsSnapshot:
    values: dict[str, float] = defaultdict(float)
    predictions: dict[str, float] = defaultdict(float)
    buckets: dict[float, float] = defaultdict(float)
    recall: dict[str, float] = {}
    labelled: dict[str, float] = {}
    drift: dict[str, tuple[float, str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            window = sample.labels.get("window", "")
            if sample.name == "sentiment_quality_macro_recall":
                recall[window] = sample.value
            elif sample.name == "sentiment_quality_labelled_posts":
                labelled[window] = sample.value
            elif sample.name == "sentiment_drift_psi":
                if sample.value >= drift.get(window, (-1.0, ""))[0]:
                    drift[window] = (sample.value, sample.labels["feature"])
            elif sample.name == "sentiment_predictions_total":
                predictions[sample.labels["label"]] += sample.value
            elif sample.name == f"{LATENCY}_bucket":
                buckets[float(sample.labels["le"])] += sample.value
            else:
                values[sample.name] += sample.value
    share = values.get("sentiment_negative_share")
    return MetricsSnapshot(
        taken_at=taken_at,
        predictions={label: predictions.get(label, 0.0) for label in LABELS},
        rows_written=values["sentiment_rows_written_total"],
        dead_letters=values["sentiment_dead_letters_total"],
        lag=values["sentiment_consumer_lag_messages"],
        alerts=values["sentiment_alerts_total"],
        alert_active=values["sentiment_alert_active"] > 0,
        negative_share=None if share is None or math.isnan(share) else share,
        latency_buckets=dict(buckets),
        quality={w: (r, labelled.get(w, 0.0)) for w, r in recall.items() if not math.isnan(r)},
        drift=drift,
    )


def scrape(url: str, timeout_s: float = 2.0) -> MetricsSnapshot:
    """One scrape of ``url`` (the consumer's /metrics)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - our own URL
        return parse(response.read().decode(), time.monotonic())


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """``histogram_quantile`` as Prometheus computes it: linear inside the bucket."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # in the open top bucket: its lower edge, like Prometheus
            inside = count - lower_count
            fraction = (rank - lower_count) / inside if inside else 1.0
            return lower_bound + (bound - lower_bound) * fraction
        lower_bound, lower_count = bound, count
    return None  # pragma: no cover - the +Inf bucket always holds the total


def bucket_delta(new: MetricsSnapshot, old: MetricsSnapshot) -> dict[float, float]:
    """The histogram of what happened between two scrapes."""
    return {b: c - old.latency_buckets.get(b, 0.0) for b, c in new.latency_buckets.items()}
