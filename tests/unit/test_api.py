"""HTTP API contract: every route, every 4xx, with a fake scorer and no pipeline."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from observability.api import Scorer as ApiScorer
from observability.api import create_app
from observability.label_stats import OnlineLabelStats
from observability.metrics import PipelineMetrics
from storage.rollups import LabelCounts, resolution_for
from stream_core.contract import LABELS, MAX_TEXT_CHARS, NOT_BLANK_PATTERN
from stream_core.events import PipelineState
from stream_core.windows import WINDOW_PATTERN, integer_range_pattern, parse_window
from tests.fixtures.fakes import FakeMetadata, FakeScorer, committed

OFFLINE = {"macro_recall": 0.69, "accuracy": 0.7, "macro_f1": 0.68}


SINCE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeWindowCounts:
    def __init__(self, counts: dict[str, int] | None = None, fail: bool = False) -> None:
        self.counts = counts or {}
        self.fail = fail
        self.windows: list[timedelta] = []
        self.entities: list[str | None] = []

    def __call__(self, window: timedelta, entity: str | None = None) -> LabelCounts:
        self.windows.append(window)
        self.entities.append(entity)
        if self.fail:
            raise ConnectionError("no route to database")
        return LabelCounts(self.counts, SINCE, resolution_for(window))


class Api:
    def __init__(self, scorer: FakeScorer | None = None, max_text_chars: int = MAX_TEXT_CHARS):
        self.scorer = scorer or FakeScorer(FakeMetadata(metrics=OFFLINE))
        self.state = PipelineState()
        self.metrics = PipelineMetrics()
        self.stats = OnlineLabelStats(LABELS)
        self.window = FakeWindowCounts({"negative": 3, "positive": 1})
        app = create_app(
            self.scorer,
            self.state,
            self.metrics,
            self.stats,
            self.window,
            max_text_chars=max_text_chars,
        )
        self.client = TestClient(app)


@pytest.fixture
def api() -> Api:
    return Api()


def test_health(api: Api) -> None:
    assert api.client.get("/health").json() == {"status": "ok"}


def test_ready_says_what_is_missing_until_everything_is_up(api: Api) -> None:
    response = api.client.get("/ready")
    assert response.status_code == 503
    assert response.json()["missing"] == ["model_loaded", "database", "partitions_assigned"]
    api.state.model_loaded = True
    api.state.database_ok = True
    response = api.client.get("/ready")
    assert response.status_code == 503
    assert response.json()["missing"] == ["partitions_assigned"]
    api.state.set_assigned({("posts", 0)})
    response = api.client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "checks": {"model_loaded": True, "database": True, "partitions_assigned": True},
        "missing": [],
    }


def test_model_returns_the_metadata(api: Api) -> None:
    assert api.client.get("/model").json() == {
        "active": {"name": "default", "folder": "/models/default"},
        "version": "fake-1",
        "labels": list(LABELS),
        "metrics": OFFLINE,
    }


def test_predict_scores_with_the_streams_scorer(api: Api) -> None:
    response = api.client.post("/predict", json={"text": "what a bad day"})
    assert response.status_code == 200
    assert response.json() == {
        "label": "negative",
        "probabilities": {"negative": 0.8, "neutral": 0.1, "positive": 0.1},
        "model_version": "fake-1",
    }
    assert api.scorer.calls == ["what a bad day"]


def test_predict_accepts_text_at_the_limit(api: Api) -> None:
    response = api.client.post("/predict", json={"text": "x" * MAX_TEXT_CHARS})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": ""}, "text is empty or whitespace only"),
        ({"text": " \t\n "}, "text is empty or whitespace only"),
        ({"text": "x" * (MAX_TEXT_CHARS + 1)}, "characters long; the limit is 10000"),
        ({"text": 42}, "valid string"),
        ({"text": None}, "valid string"),
        ({"text": ["a"]}, "valid string"),
        ({}, "Field required"),
        ({"text": "ok", "lang": "en"}, "Extra inputs are not permitted"),
        ([], "valid dictionary"),
    ],
)
def test_predict_rejects_bad_bodies_with_422(api: Api, body: object, message: str) -> None:
    response = api.client.post("/predict", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(message in problem["msg"] for problem in detail), detail
    assert "x" * 100 not in response.text  # the oversized input is not echoed back
    assert api.scorer.calls == []


def test_predict_rejects_non_json_with_422(api: Api) -> None:
    response = api.client.post(
        "/predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"][0]["msg"]


def test_predict_honours_a_lower_configured_limit() -> None:
    api = Api(max_text_chars=10)
    response = api.client.post("/predict", json={"text": "eleven char"})
    assert response.status_code == 422
    assert "11 characters long; the limit is 10" in response.json()["detail"][0]["msg"]


def test_predict_passes_on_the_scorers_refusal_as_422() -> None:
    class Refusing(FakeScorer):
        def predict(self, text: str) -> object:  # type: ignore[override]
            raise ValueError("nothing left to score after preprocessing")

    api = Api(Refusing())
    response = api.client.post("/predict", json={"text": "\u200b"})
    assert response.status_code == 422
    assert "nothing left to score" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(("method", "path"), [("get", "/predict"), ("post", "/stats")])
def test_wrong_method_is_405(api: Api, method: str, path: str) -> None:
    assert api.client.request(method, path).status_code == 405


def test_unknown_route_is_404(api: Api) -> None:
    assert api.client.get("/nope").status_code == 404


def test_stats_with_nothing_scored_is_all_zero(api: Api) -> None:
    body = api.client.get("/stats").json()
    assert body["model_version"] == "fake-1"
    assert body["offline_metrics"] == OFFLINE
    assert body["online"]["counts"] == {"negative": 0, "neutral": 0, "positive": 0}
    assert body["online"]["percentages"] == {"negative": 0.0, "neutral": 0.0, "positive": 0.0}
    assert body["online"]["total"] == 0
    assert body["online"]["accuracy"] is None


def test_stats_counts_committed_batches_and_the_database_window(api: Api) -> None:
    labels = ["negative", "negative", "neutral", "positive"]
    api.stats.on_batch_committed(committed(labels, gold=["negative", "neutral", None, "positive"]))
    body = api.client.get("/stats", params={"window": "15m"}).json()
    assert body["online"]["counts"] == {"negative": 2, "neutral": 1, "positive": 1}
    assert body["online"]["percentages"] == {"negative": 50.0, "neutral": 25.0, "positive": 25.0}
    assert body["online"]["gold_labelled"] == 3
    assert body["online"]["accuracy"] == pytest.approx(2 / 3)
    assert body["window"]["window"] == "15m"
    assert body["window"]["counts"] == {"negative": 3, "neutral": 0, "positive": 1}
    assert body["window"]["percentages"] == {"negative": 75.0, "neutral": 0.0, "positive": 25.0}
    assert body["window"]["since"] == "2025-03-01T12:00:00Z"
    assert body["window"]["resolution"] == "minute"
    assert body["window_error"] is None
    assert api.window.windows == [timedelta(minutes=15)]


def test_stats_reads_coarser_counts_for_longer_windows(api: Api) -> None:
    resolutions = {
        window: api.client.get("/stats", params={"window": window}).json()["window"]["resolution"]
        for window in ("24h", "25h", "60d", "61d")
    }
    assert resolutions == {"24h": "minute", "25h": "hour", "60d": "hour", "61d": "day"}


def test_stats_without_offline_metrics_says_null() -> None:
    api = Api(FakeScorer(FakeMetadata(metrics=None)))
    assert api.client.get("/stats").json()["offline_metrics"] is None


def test_stats_survives_a_database_outage(api: Api) -> None:
    api.window.fail = True
    response = api.client.get("/stats")
    assert response.status_code == 200
    body = response.json()
    assert body["window"] is None
    assert body["window_error"] == "database unavailable: ConnectionError"


@pytest.mark.parametrize(
    "window", ["", "abc", "15", "m", "-5m", "1.5h", "10w", "0m", "30s", "367d"]
)
def test_stats_rejects_bad_windows_with_422(api: Api, window: str) -> None:
    response = api.client.get("/stats", params={"window": window})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "window"]
    assert api.window.windows == []


def test_metrics_serves_the_pipeline_registry(api: Api) -> None:
    api.metrics.predictions.labels(label="negative").inc(3)
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    samples = {
        s.labels["label"]: s.value
        for s in families["sentiment_predictions"].samples
        if s.name == "sentiment_predictions_total"
    }
    assert samples == {"negative": 3.0}


def test_openapi_docs_are_served(api: Api) -> None:
    assert api.client.get("/docs").status_code == 200
    paths = api.client.get("/openapi.json").json()["paths"]
    assert set(paths) >= {"/predict", "/stats", "/model", "/health", "/ready", "/metrics"}


def test_openapi_states_the_rules_the_api_enforces() -> None:
    """The fuzz test (test_api_fuzz.py) checks behaviour against the document; this pins the
    rules themselves: the configured length limit, not blank, the window format, /ready's 503."""
    document = Api(max_text_chars=280).client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    text = schemas["PredictRequest"]["properties"]["text"]
    assert (text["maxLength"], text["pattern"], text["type"]) == (280, NOT_BLANK_PATTERN, "string")
    assert schemas["PredictRequest"]["additionalProperties"] is False
    window, entity = document["paths"]["/stats"]["get"]["parameters"]
    assert window["schema"]["pattern"] == WINDOW_PATTERN
    assert entity["name"] == "entity" and not entity["required"]
    assert {"200", "503"} <= set(document["paths"]["/ready"]["get"]["responses"])
    for path, method in (("/predict", "post"), ("/stats", "get")):
        assert "422" in document["paths"][path][method]["responses"]


def test_the_not_blank_pattern_is_the_rule_everywhere() -> None:
    """A text is blank for the API and the scorer when ``str.strip`` empties it; the published
    pattern must say the same in Python and in a JSON Schema validator (ECMAScript regexes, as
    schemathesis and generated clients read them), for every character."""
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": NOT_BLANK_PATTERN})
    python = re.compile(NOT_BLANK_PATTERN)
    for code in [*range(0xD800), *range(0xE000, 0x10000)]:
        char = chr(code)
        blank = not char.strip()
        assert (python.search(char) is None) == blank, hex(code)
        assert validator.is_valid(char) != blank, hex(code)


@pytest.mark.parametrize(("low", "high"), [(1, 1), (0, 9), (7, 123), (60, 99_999), (99, 101)])
def test_integer_range_pattern_matches_exactly_the_range(low: int, high: int) -> None:
    pattern = re.compile(integer_range_pattern(low, high))
    for n in range(0, 10 * high + 10):
        assert bool(pattern.fullmatch(str(n))) == (low <= n <= high), n
    assert not pattern.fullmatch(f"0{low}")  # no leading zeros


@pytest.mark.parametrize(
    ("window", "span"),
    [("60s", timedelta(minutes=1)), ("1m", timedelta(minutes=1)), ("366d", timedelta(days=366)),
     ("8784h", timedelta(days=366)), ("527040m", timedelta(days=366)),
     ("31622400s", timedelta(days=366))],
)  # fmt: skip
def test_window_bounds_in_every_unit(window: str, span: timedelta) -> None:
    assert parse_window(window) == span
    number, unit = int(window[:-1]), window[-1]
    too_far = f"{number + 1}{unit}" if span == timedelta(days=366) else f"{number - 1}{unit}"
    with pytest.raises(ValueError, match="from 1m to 366d"):
        parse_window(too_far)


def test_the_real_scorer_serves_predict_and_model(tiny_model_dir: Path) -> None:
    from model.scorer import Scorer

    scorer: ApiScorer = Scorer.load(tiny_model_dir)  # mypy: the real scorer fits the protocol
    app = create_app(
        scorer, PipelineState(), PipelineMetrics(), OnlineLabelStats(LABELS), FakeWindowCounts()
    )
    client = TestClient(app)
    body = client.post("/predict", json={"text": "@someone this is awful http://x.y"}).json()
    assert body["label"] in LABELS
    assert set(body["probabilities"]) == set(LABELS)
    assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert body["model_version"] == scorer.version
    model = client.get("/model").json()
    assert model["active"] == {"name": None, "folder": str(tiny_model_dir)}
    assert model["version"] == scorer.version
    assert model["labels"] == list(scorer.labels)


# --- model monitoring: /quality, /drift, /stats ----------------------------------------------


class FakeMonitoring:
    def __init__(self, fail: bool = False) -> None:
        self.windows = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1)}
        self.fail = fail
        self.asked: list[Mapping[str, timedelta] | None] = []

    def quality(self, windows: Mapping[str, timedelta] | None = None) -> dict[str, Any]:
        self.asked.append(windows)
        if self.fail:
            raise ConnectionError("no route to database")
        names = windows or self.windows
        return {"windows": {name: {"fake-1": {"n": 3, "macro_recall": 0.5}} for name in names}}

    def drift(self) -> dict[str, Any]:
        if self.fail:
            raise ConnectionError("no route to database")
        return {"available": False, "windows": {"15m": {"available": False, "reason": "why"}}}


def monitored_api(monitoring: FakeMonitoring) -> TestClient:
    scorer = FakeScorer(FakeMetadata(metrics=OFFLINE))
    app = create_app(
        scorer,
        PipelineState(),
        PipelineMetrics(),
        OnlineLabelStats(LABELS),
        FakeWindowCounts(),
        monitoring=monitoring,
    )
    return TestClient(app)


def test_quality_and_drift_come_from_monitoring() -> None:
    monitoring = FakeMonitoring()
    client = monitored_api(monitoring)
    assert client.get("/quality").json()["windows"]["1h"]["fake-1"]["n"] == 3
    one = client.get("/quality", params={"window": "24h"}).json()
    assert list(one["windows"]) == ["24h"]
    assert monitoring.asked[-1] == {"24h": timedelta(hours=24)}
    assert client.get("/quality", params={"window": "5x"}).status_code == 422
    assert client.get("/drift").json()["windows"]["15m"]["reason"] == "why"
    stats = client.get("/stats").json()
    assert stats["offline_metrics"] == OFFLINE
    assert stats["online_quality"]["15m"]["macro_recall"] == 0.5  # beside the reference


def test_monitoring_unavailable_is_a_503_and_stats_still_answer(api: Api) -> None:
    assert api.client.get("/quality").status_code == 503  # no monitoring in this process
    assert api.client.get("/drift").status_code == 503
    client = monitored_api(FakeMonitoring(fail=True))
    assert client.get("/quality").status_code == 503
    assert client.get("/drift").status_code == 503
    stats = client.get("/stats")
    assert stats.status_code == 200
    assert stats.json()["online_quality"] is None
