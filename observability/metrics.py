"""Every Prometheus metric the service exports, in one place (names follow Prometheus style:
base units, ``_total`` counters, ``_seconds`` durations).

Each pipeline gets its own registry, so several pipelines in one process (tests) never share
counters. Dashboards and alert rules in ``deploy/`` name these metrics; a test checks that.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from monitoring.metrics import MonitoringMetrics

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class PipelineMetrics:
    """The consumer's metrics, registered in ``registry`` (a fresh one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_consumed = Counter(
            "sentiment_messages_consumed_total",
            "Kafka messages consumed, valid or not.",
            ["topic"],
            registry=r,
        )
        self.predictions = Counter(
            "sentiment_predictions_total",
            "Posts scored and committed to PostgreSQL, by predicted label.",
            ["label"],
            registry=r,
        )
        self.rows_written = Counter(
            "sentiment_rows_written_total",
            "Rows inserted into scored_posts (replayed duplicates excluded).",
            registry=r,
        )
        self.duplicates_skipped = Counter(
            "sentiment_duplicates_skipped_total",
            "Rows already present (same topic, partition, offset) and skipped on replay.",
            registry=r,
        )
        self.dead_letters = Counter(
            "sentiment_dead_letters_total",
            "Messages sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.batch_size = Histogram(
            "sentiment_batch_size",
            "Posts per scored micro-batch.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "sentiment_inference_seconds",
            "Model inference time per micro-batch.",
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.db_write_seconds = Histogram(
            "sentiment_db_write_seconds",
            "PostgreSQL write time per micro-batch (one transaction).",
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.db_write_errors = Counter(
            "sentiment_db_write_errors_total",
            "Failed PostgreSQL write attempts (each is retried with backoff).",
            registry=r,
        )
        self.end_to_end_latency = Histogram(
            "sentiment_end_to_end_latency_seconds",
            "Time from the post's created_at, or from the Kafka timestamp, to the DB commit.",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "sentiment_consumer_lag_messages",
            "High watermark minus committed offset, per assigned partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.assigned_partitions = Gauge(
            "sentiment_assigned_partitions",
            "Partitions currently assigned to this consumer.",
            registry=r,
        )
        self.negative_share = Gauge(
            "sentiment_negative_share",
            "Fleet-wide negative share over the detector's window (0..1; NaN off the leader).",
            registry=r,
        )
        self.alerts = Counter(
            "sentiment_alerts_total",
            "Spike alerts raised by this replica's fleet-wide detector (scope: stream, entity).",
            ["kind", "scope"],
            registry=r,
        )
        self.alert_active = Gauge(
            "sentiment_alert_active",
            "1 while a fleet-wide negative spike alert on the whole stream is active, else 0.",
            registry=r,
        )
        self.detector_leader = Gauge(
            "sentiment_detector_leader",
            "1 on the one replica running fleet-wide spike detection, else 0.",
            registry=r,
        )
        # Per language: the most common languages by name, the rest as "other" (bounded).
        self.language_posts = Counter(
            "sentiment_posts_by_language_total",
            "Posts committed by this replica, by language (und: undetermined, other: any "
            "language not tracked by name) and status (scored, unscored: no model reads it).",
            ["lang", "status"],
            registry=r,
        )
        # Per watched entity: only the entities marked metrics: true, at most
        # SENTIMENT_WATCH_METRICS_MAX of them, so the label stays bounded.
        self.entity_posts = Counter(
            "sentiment_entity_posts_total",
            "Posts naming a watched entity, committed by this replica, by predicted label.",
            ["entity", "label"],
            registry=r,
        )
        self.entity_negative_share = Gauge(
            "sentiment_entity_negative_share",
            "Fleet-wide negative share of a watched entity over the detector's window.",
            ["entity"],
            registry=r,
        )
        self.entity_alert_active = Gauge(
            "sentiment_entity_alert_active",
            "1 while a negative spike alert on a watched entity is active, else 0.",
            ["entity"],
            registry=r,
        )
        self.watchlist_entities = Gauge(
            "sentiment_watchlist_entities",
            "Entities in this replica's watchlist.",
            registry=r,
        )
        self.model_info = Info(
            "sentiment_model",
            "The model that scores the stream.",
            registry=r,
        )
        self.model_swaps = Counter(
            "sentiment_model_swaps_total",
            "Registry versions this replica loaded to serve or to shadow, by outcome (loaded,"
            " failed: the version before keeps its role).",
            ["role", "outcome"],
            registry=r,
        )
        self.model_rollbacks = Counter(
            "sentiment_model_rollbacks_total",
            "Automated rollbacks this replica decided, by the version rolled back.",
            ["model_version"],
            registry=r,
        )
        self.shadow_posts = Counter(
            "sentiment_shadow_posts_total",
            "Posts sampled for the shadow version, by outcome (scored; dropped: its queue was"
            " full; failed).",
            ["outcome"],
            registry=r,
        )
        self.shadow_predictions = Counter(
            "sentiment_shadow_predictions_total",
            "Shadow-scored posts by role (active, shadow), version and label: both label mixes.",
            ["role", "model_version", "label"],
            registry=r,
        )
        self.shadow_agreements = Counter(
            "sentiment_shadow_agreements_total",
            "Shadow-scored posts the shadow version labelled as the active one did.",
            ["model_version"],
            registry=r,
        )
        self.shadow_inference_seconds = Histogram(
            "sentiment_shadow_inference_seconds",
            "Time the shadow version took per shadow batch (its cost beside the active path).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.monitoring = MonitoringMetrics(r)  # online quality and drift (monitoring/)
