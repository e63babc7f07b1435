"""Model monitoring on real PostgreSQL (and a real broker): online quality from the labels topic
equals `model evaluate` on the same posts; the drift job compares a window with the reference
profile, stores it, exports it, and says "unavailable" (never 0) without a profile."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from click.testing import CliRunner

from model.data import read_splits
from model.evaluate import evaluate
from model.export import export_model
from model.profile import FEATURES, Profile, write_reference_profile
from model.scorer import Scorer
from monitoring.jobs import MonitoringJobs, served_model
from monitoring.reader import MonitoringReader
from monitoring.settings import MonitoringSettings
from observability.metrics import PipelineMetrics
from sentiment_stream.cli import main
from storage.quality import quality_by_version
from storage.urls import libpq_url
from tests.fixtures import pipeline as support

pytestmark = pytest.mark.integration

EVALUATED = "val[0:300]"


def label_value(post_id: str, label: str) -> bytes:
    return json.dumps({"post_id": post_id, "label": label}).encode()


def sample(metrics: PipelineMetrics, name: str, **labels: str) -> float | None:
    value = metrics.registry.get_sample_value(name, labels)
    return None if value is None else float(value)


def test_online_macro_recall_equals_model_evaluate_on_the_same_posts(
    kafka_bootstrap: str,
    database_url: str,
    topic: str,
    tiny_model_dir: Path,
    sample_dir: Path,
    tmp_path: Path,
) -> None:
    # fp32: int8-dynamic scores depend on a post's batch-mates, and the stream batches posts
    # otherwise than `model evaluate` does, so a borderline post could flip.
    export_model(
        str(tiny_model_dir.parent / "checkpoint"),
        tmp_path / "fp32",
        quantization="none",
        preprocessing="cardiffnlp",
    )
    scorer = Scorer.load(tmp_path / "fp32")
    tweets = read_splits(sample_dir, [EVALUATED])
    labels_topic = f"{topic}.labels"
    support.create_topic(kafka_bootstrap, topic, 2)
    support.create_topic(kafka_bootstrap, labels_topic, 2)
    support.migrated(database_url)
    settings = support.settings_for(kafka_bootstrap, database_url, topic)
    posts = [
        json.dumps({"id": f"t{i}", "text": t.text, "created_at": datetime.now(UTC).isoformat()})
        for i, t in enumerate(tweets)
    ]
    labels = [label_value(f"t{i}", scorer.labels[t.label_id]) for i, t in enumerate(tweets)]
    random.Random(11).shuffle(labels)  # late, and in another order than the posts
    with support.running_pipeline(settings, scorer) as running:
        support.produce(kafka_bootstrap, topic, [p.encode() for p in posts], partitions=2)
        support.produce(kafka_bootstrap, labels_topic, labels[:150], partitions=2)
        support.wait_until(
            lambda: support.row_count(database_url) == len(tweets), 120, "every post stored"
        )
        support.produce(kafka_bootstrap, labels_topic, labels[150:], partitions=2)
        support.wait_until(
            lambda: (
                support.query(
                    database_url, "SELECT count(*) FROM scored_posts WHERE gold_label IS NOT NULL"
                )[0][0]
                == len(tweets)
            ),
            120,
            "every post labelled",
        )
    assert not running.errors

    offline = evaluate(scorer, sample_dir, [EVALUATED])
    metrics = PipelineMetrics()
    jobs = MonitoringJobs(
        MonitoringSettings.model_validate({"monitor_windows": "15m,1h"}),
        served_model(scorer.version, scorer.labels, tmp_path / "fp32", offline.as_metrics()),
        metrics.monitoring,
    )
    jobs.elected()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        jobs.run_quality(conn)
        online = quality_by_version(conn, since=datetime.now(UTC) - timedelta(hours=1))
    assert online[scorer.version].matrix.tolist() == offline.matrix.tolist()
    assert online[scorer.version].macro_recall == pytest.approx(offline.macro_recall, abs=1e-12)
    for window in ("15m", "1h"):
        labels_in = dict(model_version=scorer.version, window=window)
        assert sample(metrics, "sentiment_quality_labelled_posts", **labels_in) == len(tweets)
        assert sample(metrics, "sentiment_quality_macro_recall", **labels_in) == pytest.approx(
            offline.macro_recall
        )
    assert sample(
        metrics, "sentiment_quality_reference_macro_recall", model_version=scorer.version
    ) == pytest.approx(offline.macro_recall, abs=1e-4)  # metadata.json rounds to 4 digits
    document = MonitoringReader(database_url, scorer.version, jobs.settings.windows()).quality()
    assert document["windows"]["1h"][scorer.version]["macro_recall"] == pytest.approx(
        offline.macro_recall, abs=1e-4
    )
    jobs.deposed()  # another replica measures now: this one exports none of it
    assert sample(metrics, "sentiment_quality_macro_recall", **labels_in) is None


def store(
    conn: psycopg.Connection[Any],
    version: str,
    texts: Sequence[str],
    probabilities: np.ndarray,
    first_offset: int,
) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO scored_posts (post_id, text, label, prob_negative, prob_neutral,"
            " prob_positive, model_version, kafka_topic, kafka_partition, kafka_offset)"
            " VALUES (%s, %s, 'neutral', %s, %s, %s, %s, 'posts', 0, %s)",
            [
                (f"{version}-{i}", text, *map(float, row), version, first_offset + i)
                for i, (text, row) in enumerate(zip(texts, probabilities, strict=True))
            ],
        )


def drifted(text: str, i: int) -> str:
    """What the drift scenario sends: shouting, emoji, long non-tweet text."""
    kinds = [text.upper(), "\U0001f525\U0001f602\U0001f44d", " ".join([text] * 8)]
    return kinds[i % 3]


def test_drift_job_against_the_reference_profile(
    database_url: str, tiny_model_dir: Path, sample_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    tweets = [t.text for t in read_splits(sample_dir, ["val"])]
    write_reference_profile(folder, tweets[:1000], source="val[0:1000]")
    scorer = Scorer.load(folder)
    plain = tweets[1000:1600]
    shifted = [drifted(t, i) for i, t in enumerate(plain)]
    support.migrated(database_url)
    settings = MonitoringSettings.model_validate(
        {"monitor_windows": "15m,1h", "drift_min_posts": 50}
    )
    metrics = PipelineMetrics()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        store(conn, "plain", plain, scorer.score(plain).probabilities, 0)
        store(conn, "shifted", shifted, scorer.score(shifted).probabilities, 10_000)
        psis = {}
        for version in ("plain", "shifted"):
            served = served_model(version, scorer.labels, folder, None)
            jobs = MonitoringJobs(settings, served, metrics.monitoring)
            jobs.elected()
            jobs.run_drift(conn)
            psis[version] = {
                f: sample(metrics, "sentiment_drift_psi", feature=f, window="15m")
                for f in Profile.read(folder).features  # type: ignore[union-attr]
            }
            rows = conn.execute(
                "SELECT count(DISTINCT feature), count(*), min(online_posts) FROM drift_reports"
                " WHERE model_version = %s",
                (version,),
            ).fetchone()
            assert rows == (len(FEATURES), 2 * len(FEATURES), len(plain))  # 2 windows
    assert max(v for v in psis["plain"].values() if v is not None) < 0.2
    assert psis["shifted"]["has_emoji"] > 0.2  # type: ignore[operator]
    assert psis["shifted"]["uppercase_share"] > 0.2  # type: ignore[operator]
    assert psis["shifted"]["text_length"] > 0.2  # type: ignore[operator]
    drift = MonitoringReader(database_url, "shifted", settings.windows()).drift()
    assert drift["available"] is True
    assert {"has_emoji", "uppercase_share", "text_length"} <= set(
        drift["windows"]["15m"]["drifted"]
    )
    assert drift["last_run"]["status"] == "ok"

    # The report of what was measured: the command, as an HTML page and as a PNG.
    for name in ("report.html", "report.png"):
        result = CliRunner().invoke(
            main,
            ["monitor", "report", "--since", "1h", "--out", str(tmp_path / name)],
            env={"DATABASE_URL": database_url, "SENTIMENT_MODEL": str(folder)},
        )
        assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    assert "has_emoji" in page and "data:image/png;base64," in page
    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG")


def test_a_model_without_a_profile_reports_drift_unavailable_never_zero(
    database_url: str, tiny_model_dir: Path
) -> None:
    support.migrated(database_url)
    assert Profile.read(tiny_model_dir) is None
    metrics = PipelineMetrics()
    served = served_model("bare", ("negative", "neutral", "positive"), tiny_model_dir, None)
    jobs = MonitoringJobs(
        MonitoringSettings.model_validate({"monitor_windows": "15m"}), served, metrics.monitoring
    )
    jobs.elected()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        store(conn, "bare", ["a post"] * 200, np.full((200, 3), 1 / 3), 0)
        jobs.run_drift(conn)
        assert conn.execute("SELECT count(*) FROM drift_reports").fetchone() == (0,)
    assert sample(metrics, "sentiment_drift_available", window="15m") == 0
    assert sample(metrics, "sentiment_drift_psi", feature="label", window="15m") is None
    drift = MonitoringReader(database_url, "bare", {"15m": timedelta(minutes=15)}).drift()
    assert drift["available"] is False
    assert "profile.json" in drift["windows"]["15m"]["reason"]
    assert drift["last_run"]["status"] == "unavailable"
