"""The monitoring jobs' schedule, settings and what they know of the served model (no
database: the jobs themselves run against PostgreSQL in tests/integration/test_monitoring.py)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from model.profile import PROFILE_FILE
from model.settings import DEFAULT_MODEL_DIR
from monitoring.jobs import MonitoringJobs, _Due, served_model
from monitoring.metrics import MonitoringMetrics
from monitoring.settings import MonitoringSettings

LABELS = ("negative", "neutral", "positive")


def test_a_window_is_measured_again_once_a_96th_of_its_span_has_passed() -> None:
    due = _Due({"15m": timedelta(minutes=15), "24h": timedelta(hours=24)})
    assert due.due(0.0) == ["15m", "24h"]  # never measured: both at once
    due.last = {"15m": 0.0, "24h": 0.0}
    assert due.due(9.0) == []
    assert due.due(9.4) == ["15m"]  # 900 s / 96 = 9.375 s
    assert due.due(899.0) == ["15m"]
    assert due.due(900.0) == ["15m", "24h"]  # 86,400 s / 96 = 15 min
    due.reset()  # a newly elected replica measures everything at once
    assert due.due(1.0) == ["15m", "24h"]


def test_windows_are_validated_and_kept_in_order() -> None:
    settings = MonitoringSettings.model_validate({"monitor_windows": " 1h, 15m ,7d"})
    assert settings.windows() == {
        "1h": timedelta(hours=1),
        "15m": timedelta(minutes=15),
        "7d": timedelta(days=7),
    }
    for bad in ("", "15x", "30s"):  # 30s: below the 1-minute minimum
        with pytest.raises(ValidationError):
            MonitoringSettings.model_validate({"monitor_windows": bad})


def test_served_model_knows_its_reference_or_says_why_not(tmp_path: Path) -> None:
    shipped = served_model("v", LABELS, DEFAULT_MODEL_DIR, {"macro_recall": 0.7})
    assert shipped.reference_macro_recall == 0.7
    assert shipped.profile is not None and shipped.builder is not None
    folder = tmp_path / "old"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    (folder / PROFILE_FILE).unlink()
    old = served_model("v", LABELS, folder, None)
    assert old.profile is None and old.reference_macro_recall is None
    assert old.unavailable_reason is not None and PROFILE_FILE in old.unavailable_reason
    (folder / PROFILE_FILE).write_text("not json")
    broken = served_model("v", LABELS, folder, None)
    assert broken.profile is None and "cannot read" in (broken.unavailable_reason or "")


def test_the_jobs_measure_the_version_the_registry_swapped_in() -> None:
    metrics = MonitoringMetrics(CollectorRegistry())
    jobs = MonitoringJobs(
        MonitoringSettings(), served_model("v1", LABELS, None, {"macro_recall": 0.7}), metrics
    )
    jobs.serve(served_model("v2", LABELS, DEFAULT_MODEL_DIR, {"macro_recall": 0.69}))
    assert jobs.served.version == "v2" and jobs.served.profile is not None
    reference = metrics.quality_reference_macro_recall
    assert reference.labels("v2")._value.get() == pytest.approx(0.69)
