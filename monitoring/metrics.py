"""The monitoring gauges. They are registered into the service's registry
(``observability.metrics.PipelineMetrics`` makes one :class:`MonitoringMetrics`), and only the
elected replica sets the measured ones: the other replicas export none, so a dashboard's
``max by (...)`` reads the one measurement, not one per replica.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

WINDOWED = ["model_version", "window"]


class MonitoringMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.quality_macro_recall = Gauge(
            "sentiment_quality_macro_recall",
            "Online macro recall against late gold labels, per model version and window.",
            WINDOWED,
            registry=r,
        )
        self.quality_accuracy = Gauge(
            "sentiment_quality_accuracy",
            "Online accuracy against late gold labels, per model version and window.",
            WINDOWED,
            registry=r,
        )
        self.quality_recall = Gauge(
            "sentiment_quality_recall",
            "Online recall of one class, per model version and window.",
            [*WINDOWED, "label"],
            registry=r,
        )
        self.quality_labelled_posts = Gauge(
            "sentiment_quality_labelled_posts",
            "Posts whose gold label arrived in the window, per model version.",
            WINDOWED,
            registry=r,
        )
        self.quality_reference_macro_recall = Gauge(
            "sentiment_quality_reference_macro_recall",
            "Offline macro recall of the model (its metadata.json), the online figures' reference.",
            ["model_version"],
            registry=r,
        )
        self.quality_alert_margin = Gauge(
            "sentiment_quality_alert_margin",
            "SENTIMENT_QUALITY_ALERT_MARGIN: how far below the reference online quality may go.",
            registry=r,
        )
        self.quality_alert_min_labelled = Gauge(
            "sentiment_quality_alert_min_labelled",
            "SENTIMENT_QUALITY_ALERT_MIN_LABELLED: labelled posts a window needs to be judged.",
            registry=r,
        )
        self.gold_labels_pending = Gauge(
            "sentiment_gold_labels_pending",
            "Gold labels stored whose post has not arrived yet.",
            registry=r,
        )
        self.drift_psi = Gauge(
            "sentiment_drift_psi",
            "Population stability index of a feature of the served model's input or output, "
            "window against the reference profile.",
            ["feature", "window"],
            registry=r,
        )
        self.drift_js_distance = Gauge(
            "sentiment_drift_js_distance",
            "Jensen-Shannon distance (base 2) of a feature, window against the reference.",
            ["feature", "window"],
            registry=r,
        )
        self.drift_available = Gauge(
            "sentiment_drift_available",
            "1 when the window's drift was measured, 0 when unavailable (no reference profile, "
            "too few posts): then sentiment_drift_psi has no series, never a 0.",
            ["window"],
            registry=r,
        )
        self.drift_psi_threshold = Gauge(
            "sentiment_drift_psi_threshold",
            "SENTIMENT_DRIFT_PSI_THRESHOLD: the PSI InputDrift fires above.",
            registry=r,
        )
        self.monitoring_last_run = Gauge(
            "sentiment_monitoring_last_run_timestamp_seconds",
            "When the elected replica last finished a monitoring task (Unix time).",
            ["task"],
            registry=r,
        )
        self.monitoring_run_seconds = Gauge(
            "sentiment_monitoring_run_seconds",
            "How long the last run of a monitoring task took.",
            ["task"],
            registry=r,
        )
        self.monitoring_interval = Gauge(
            "sentiment_monitoring_interval_seconds",
            "How often a monitoring task is meant to run (MonitoringJobsStale reads it).",
            ["task"],
            registry=r,
        )
        self.monitoring_leader = Gauge(
            "sentiment_monitoring_leader",
            "1 on the one replica running the monitoring jobs, else 0.",
            registry=r,
        )

    def measured(self) -> tuple[Gauge, ...]:
        """The gauges only the leader sets: cleared when it is deposed."""
        return (
            self.quality_macro_recall,
            self.quality_accuracy,
            self.quality_recall,
            self.quality_labelled_posts,
            self.gold_labels_pending,
            self.drift_psi,
            self.drift_js_distance,
            self.drift_available,
            self.monitoring_last_run,
            self.monitoring_run_seconds,
        )
