"""The simulator: paced, idempotent replay of TweetEval into a Kafka topic.

Used by ``sentiment-stream simulate`` and, in-process, by the demo::

    summary = Simulator(config, settings.producer_kafka_config()).run(stop_event)
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from confluent_kafka import KafkaError, Message, Producer

from model.data import LabelledTweet
from producer_sim.feedback import Feedback, drifted
from producer_sim.pacing import Pacer
from producer_sim.poison import PoisonKind, poison_value
from producer_sim.posts import (
    AuthorPool,
    EntityMentions,
    Spike,
    TweetPicker,
    encode,
    post_fields,
)
from producer_sim.topics import ensure_topic
from stream_core.contract import GOLD_LABEL_HEADER, LABELS
from stream_core.kafka import RELIABLE_PRODUCER

log = structlog.get_logger(__name__)

# Headers that tell tests and curious users what each message is; the consumer ignores them.
SEQ_HEADER = "x-sim-seq"  # send order, 0-based, increasing over the whole run
KIND_HEADER = "x-sim-kind"  # "post", "duplicate" or "poison"
POISON_HEADER = "x-sim-poison"  # the PoisonKind of a poison message

StopReason = Literal["limit", "duration", "end_of_data", "stopped"]
MAX_ERRORS_KEPT = 5
RECENT_POSTS_KEPT = 256  # duplicates re-send one of these


@dataclass(frozen=True)
class SimulatorConfig:
    topic: str
    tweets: Sequence[LabelledTweet]
    rate_per_s: float = 50.0  # <= 0: as fast as the broker takes them
    limit: int | None = None  # messages in all (posts, duplicates and poison)
    duration_s: float | None = None
    loop: bool = False
    shuffle: bool = False
    seed: int | None = None
    authors: int = 1000
    lang: str = "en"  # of the tweets whose data names none
    omit_lang: bool = False  # send no lang: the consumer must identify every post's language
    spike: Spike | None = None
    poison_rate: float = 0.0
    duplicate_rate: float = 0.0
    partitions: int = 6
    replication_factor: int = -1
    compression: str = "lz4"
    linger_ms: int = 5
    # Late gold labels on labels_topic (producer_sim/feedback.py); then no x-gold-label header.
    labels_topic: str = ""
    feedback_rate: float = 0.0
    feedback_delay_s: float = 30.0
    feedback_shuffle: bool = False
    drift_at_s: float | None = None  # the drift scenario: posts change from this second on


@dataclass
class SimulationSummary:
    topic: str
    partitions: int
    target_rate_per_s: float
    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    posts: int = 0
    duplicates: int = 0
    poison: dict[str, int] = field(default_factory=dict)
    gold_labels: dict[str, int] = field(default_factory=dict)
    spike_posts: int = 0  # of a spike about an entity: the posts naming it
    spike_negative: int = 0
    entity_posts: int = 0  # posts rewritten to name the spike's entity (--spike-entity)
    started_at: str | None = None  # UTC, ISO: when message 0 was due (the spike's offsets start)
    feedback_labels: int = 0
    drifted_posts: int = 0
    elapsed_s: float = 0.0
    achieved_rate_per_s: float = 0.0
    stop_reason: StopReason = "stopped"
    delivery_errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProgressSnapshot:
    sent: int
    acknowledged: int
    failed: int
    elapsed_s: float
    limit: int | None
    duration_s: float | None
    target_rate_per_s: float

    @property
    def rate_per_s(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def fraction_done(self) -> float | None:
        """Share of the run done, when a limit or a duration bounds it."""
        shares = []
        if self.limit:
            shares.append(self.sent / self.limit)
        if self.duration_s:
            shares.append(self.elapsed_s / self.duration_s)
        return min(1.0, max(shares)) if shares else None


@dataclass
class _Outgoing:
    key: bytes
    value: bytes
    headers: dict[str, str]


class Simulator:
    """Sends messages until the limit, the duration, the data's end or ``stop_event``."""

    def __init__(self, config: SimulatorConfig, kafka_config: dict[str, Any]) -> None:
        self.config = config
        self.kafka_config = kafka_config
        self.summary = SimulationSummary(config.topic, config.partitions, config.rate_per_s)
        self._rng = random.Random(config.seed)  # noqa: S311 - a simulation, not secrets
        self._picker = TweetPicker(
            config.tweets,
            self._rng,
            loop=config.loop,
            shuffle=config.shuffle,
            spike=config.spike,
        )
        self._authors = AuthorPool(config.authors, self._rng)
        spike = config.spike
        self._mentions = (
            EntityMentions(spike.entity, spike.entity_share, self._rng)
            if spike and spike.entity
            else None
        )
        self._recent: deque[_Outgoing] = deque(maxlen=RECENT_POSTS_KEPT)
        self._run_id = uuid.uuid4().hex[:8]
        self._poison_kinds = list(PoisonKind)
        self._pacer: Pacer | None = None
        self._labels: Counter[str] = Counter()
        self._poison: Counter[str] = Counter()
        if config.feedback_rate > 0 and not config.labels_topic:
            raise ValueError("--feedback-rate needs a labels topic (SENTIMENT_LABELS_TOPIC)")
        self._feedback = Feedback(
            config.feedback_rate,
            config.feedback_delay_s,
            self._rng,
            shuffle=config.feedback_shuffle,
        )

    def producer_config(self) -> dict[str, Any]:
        return {
            **self.kafka_config,
            **RELIABLE_PRODUCER,  # broker-side dedup of retries, per-partition order
            "compression.type": self.config.compression,
            "linger.ms": self.config.linger_ms,
            "client.id": f"sentiment-simulator-{self._run_id}",
        }

    def snapshot(self) -> ProgressSnapshot:
        """Live counters for a progress display (safe to call from another thread)."""
        s = self.summary
        return ProgressSnapshot(
            s.sent,
            s.acknowledged,
            s.failed,
            self._pacer.elapsed() if self._pacer else 0.0,
            self.config.limit,
            self.config.duration_s,
            self.config.rate_per_s,
        )

    def run(self, stop_event: threading.Event | None = None) -> SimulationSummary:
        stop_event = stop_event or threading.Event()
        config = self.config
        self.summary.partitions = ensure_topic(
            self.kafka_config, config.topic, config.partitions, config.replication_factor
        )
        if config.feedback_rate > 0:
            ensure_topic(
                self.kafka_config, config.labels_topic, config.partitions, config.replication_factor
            )
        producer = Producer(self.producer_config())
        pacer = self._pacer = Pacer(config.rate_per_s)
        self.summary.started_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        first_send = last_send = 0.0
        try:
            while not stop_event.is_set():
                if config.limit is not None and self.summary.sent >= config.limit:
                    self.summary.stop_reason = "limit"
                    break
                seq = self.summary.sent
                # Wait for this message's slot, serving delivery reports meanwhile.
                while (wait := pacer.wait_s(seq)) > 0 and not stop_event.is_set():
                    producer.poll(min(wait, 0.05))
                if stop_event.is_set():
                    break
                offset = pacer.offset(seq)
                if config.duration_s is not None and offset >= config.duration_s:
                    self.summary.stop_reason = "duration"
                    break
                outgoing = self._next_message(seq, offset)
                if outgoing is None:
                    self.summary.stop_reason = "end_of_data"
                    break
                self._produce(producer, outgoing)
                last_send = time.monotonic()
                first_send = first_send or last_send
                self._send_labels(producer, pacer.elapsed())
                producer.poll(0)
            self._send_late_labels(producer, pacer, stop_event)
        finally:
            self._flush(producer, stop_event)
        summary = self.summary
        summary.elapsed_s = round(pacer.elapsed(), 3)
        if summary.sent > 1 and last_send > first_send:
            # Intervals between the first and the last send: exact for a paced run.
            summary.achieved_rate_per_s = round((summary.sent - 1) / (last_send - first_send), 2)
        summary.gold_labels = dict(self._labels)
        summary.poison = dict(self._poison)
        log.info("simulation_done", **{k: v for k, v in summary.to_dict().items() if v})
        return summary

    def _next_message(self, seq: int, offset_s: float) -> _Outgoing | None:
        config, summary = self.config, self.summary
        draw = self._rng.random()
        if draw < config.poison_rate:
            # Round robin over the kinds, so even a few poison messages cover many kinds.
            kind = self._poison_kinds[self._poison.total() % len(self._poison_kinds)]
            author = self._authors.next()
            fields = post_fields(self._post_id(seq), self._picker.any().text, author, config.lang)
            self._poison[kind.value] += 1
            headers = {KIND_HEADER: "poison", POISON_HEADER: kind.value}
            return _Outgoing(author.encode(), poison_value(kind, fields), headers)
        if draw < config.poison_rate + config.duplicate_rate and self._recent:
            original = self._rng.choice(self._recent)
            summary.duplicates += 1
            headers = {**original.headers, KIND_HEADER: "duplicate"}
            return _Outgoing(original.key, original.value, headers)
        names_entity = self._mentions is not None and self._mentions.draw()
        tweet = self._picker.next(offset_s, names_entity=names_entity)
        if tweet is None:
            return None
        if config.drift_at_s is not None and offset_s >= config.drift_at_s:
            tweet = drifted(tweet, summary.drifted_posts, config.tweets, self._rng)
            summary.drifted_posts += 1
        text = tweet.text
        if names_entity and self._mentions is not None:
            text = self._mentions.mention(text)
            summary.entity_posts += 1
        author, label = self._authors.next(), LABELS[tweet.label_id]
        lang = None if config.omit_lang else tweet.lang or config.lang
        post_id = self._post_id(seq)
        value = encode(post_fields(post_id, text, author, lang))
        headers = {KIND_HEADER: "post"}
        if config.feedback_rate > 0:  # the labels come late, on the labels topic, or never
            self._feedback.offer(post_id, author.encode(), label, offset_s)
        else:
            headers[GOLD_LABEL_HEADER] = label
        outgoing = _Outgoing(author.encode(), value, headers)
        summary.posts += 1
        self._labels[label] += 1
        if config.spike and config.spike.covers(offset_s, names_entity):
            summary.spike_posts += 1
            summary.spike_negative += label == "negative"
        self._recent.append(outgoing)
        return outgoing

    def _send_labels(self, producer: Producer, now_s: float) -> None:
        for key, value in self._feedback.due(now_s):
            self._send(
                producer,
                self.config.labels_topic,
                key,
                value,
                {KIND_HEADER: "label"},
                on_delivery=self._on_label_delivery,
            )
            self.summary.feedback_labels += 1

    def _send_late_labels(
        self, producer: Producer, pacer: Pacer, stop_event: threading.Event
    ) -> None:
        """After the last post, the labels still waiting, each at its time."""
        while len(self._feedback) and not stop_event.is_set():
            due_s = self._feedback.next_due_s() or 0.0
            producer.poll(min(0.2, max(0.0, due_s - pacer.elapsed())))
            self._send_labels(producer, pacer.elapsed())

    def _post_id(self, seq: int) -> str:
        return f"sim-{self._run_id}-{seq:09d}"

    def _produce(self, producer: Producer, outgoing: _Outgoing) -> None:
        headers = {**outgoing.headers, SEQ_HEADER: str(self.summary.sent)}
        self._send(
            producer,
            self.config.topic,
            outgoing.key,
            outgoing.value,
            headers,
            on_delivery=self._on_delivery,
        )
        self.summary.sent += 1

    def _send(
        self,
        producer: Producer,
        topic: str,
        key: bytes,
        value: bytes,
        headers: dict[str, str],
        *,
        on_delivery: Callable[[KafkaError | None, Message], None],
    ) -> None:
        while True:
            try:
                producer.produce(
                    topic,
                    key=key,
                    value=value,
                    headers=list(headers.items()),
                    on_delivery=on_delivery,
                )
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is None:
            self.summary.acknowledged += 1
            return
        self.summary.failed += 1
        if len(self.summary.delivery_errors) < MAX_ERRORS_KEPT:
            self.summary.delivery_errors.append(str(error))

    def _on_label_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None and len(self.summary.delivery_errors) < MAX_ERRORS_KEPT:
            self.summary.delivery_errors.append(f"label: {error}")

    def _flush(self, producer: Producer, stop_event: threading.Event) -> None:
        """Wait for the delivery reports of everything sent (bounded when asked to stop)."""
        remaining = producer.flush(10.0 if stop_event.is_set() else 60.0)
        if remaining:
            log.warning("undelivered_on_exit", messages=remaining)
            self.summary.failed += remaining
