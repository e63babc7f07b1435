"""Language identification, its modes, the language settings and routing posts to models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from consumer.routing import Route, Routes, RoutingError, load_routes
from consumer.scoring import ScoreStep
from language.identify import UNDETERMINED, Identifier, cleaned, language_code
from language.settings import LanguageSettings
from language.step import IdentifyStep
from observability.metrics import PipelineMetrics
from stream_core.batch import Batch
from stream_core.records import Post, SourceRecord
from tests.fixtures.fakes import FakeMetadata, FakeScorer

SPANISH = "No puedo creer que el partido de mañana se haya cancelado otra vez, qué vergüenza"
ENGLISH = "I can't believe the game tomorrow got cancelled again, what a shame"
GERMAN = "Ich kann nicht glauben, dass das Spiel morgen schon wieder abgesagt wurde"


@pytest.fixture(scope="module")
def identifier() -> Identifier:
    return Identifier()


def batch_of(*posts: tuple[str, str | None]) -> Batch:
    batch = Batch()
    for offset, (text, lang) in enumerate(posts):
        record = SourceRecord("posts", 0, offset, None, b"{}")
        batch.add(record, Post(post_id=f"p{offset}", text=text, lang=lang))
    return batch


def test_identifies_tweets_offline(identifier: Identifier) -> None:
    assert identifier.identify(ENGLISH).lang == "en"
    assert identifier.identify(SPANISH).lang == "es"
    assert identifier.identify(GERMAN).lang == "de"
    assert identifier.identify(f"@user {SPANISH} http://t.co/x #futbol").confidence > 0.8
    assert identifier.identify("@user http://t.co/x").lang == UNDETERMINED  # nothing to read


def test_cleaning_and_codes() -> None:
    assert cleaned("@user hola\namigos http://t.co/x &amp; #fiesta") == "hola amigos fiesta"
    assert language_code("pt-BR") == "pt"
    assert language_code(" EN_us") == "en"


def test_missing_mode_honours_the_message_lang(identifier: Identifier) -> None:
    posts = IdentifyStep(identifier, "missing").process(batch_of((SPANISH, "en"), (SPANISH, None)))
    given, detected = posts.posts
    assert (given.lang, given.lang_source, given.lang_confidence) == ("en", "message", None)
    assert (detected.lang, detected.lang_source) == ("es", "detected")
    assert detected.lang_confidence is not None and detected.lang_confidence > 0.8


def test_check_mode_trusts_a_confident_guess_over_the_message(identifier: Identifier) -> None:
    batch = batch_of((SPANISH, "en"), (ENGLISH, "EN-gb"))
    wrong, right = IdentifyStep(identifier, "check", 0.5).process(batch).posts
    assert (wrong.lang, wrong.lang_source) == ("es", "detected")
    assert (right.lang, right.lang_source) == ("en", "message")
    assert right.lang_confidence is not None  # the guess agreed
    (unsure,) = IdentifyStep(identifier, "check", 0.999).process(batch_of(("lol ok", "fr"))).posts
    assert (unsure.lang, unsure.lang_source) == ("fr", "message")  # a weak guess changes nothing


def test_off_mode_identifies_nothing(identifier: Identifier) -> None:
    posts = IdentifyStep(identifier, "off").process(batch_of((SPANISH, None), (SPANISH, "und")))
    assert [(p.lang, p.lang_source) for p in posts.posts] == [(None, None), (None, None)]


def test_below_the_floor_the_language_is_undetermined(identifier: Identifier) -> None:
    (post,) = IdentifyStep(identifier, "missing", 0.999).process(batch_of(("lol ok", None))).posts
    assert (post.lang, post.lang_source) == (UNDETERMINED, "detected")


def test_settings_read_language_models_as_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_LANGUAGE_MODELS", "es=/models/es, pt-BR=/models/pt")
    settings = LanguageSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.language_models == {"es": Path("/models/es"), "pt": Path("/models/pt")}
    monkeypatch.setenv("SENTIMENT_LANGUAGE_MODELS", "es")
    with pytest.raises(ValidationError, match="lang=folder"):
        LanguageSettings(_env_file=None)  # type: ignore[call-arg]


def scorer(version: str) -> FakeScorer:
    return FakeScorer(metadata=FakeMetadata(version=version))


def test_posts_go_to_the_model_of_their_language() -> None:
    english, spanish = scorer("en-1"), scorer("es-1")
    routes = Routes(Route(english, frozenset({"en"})), [Route(spanish, frozenset({"es"}))])
    batch = batch_of(("a", "en"), ("b", "es"), ("c", "ja"), ("d", None), ("e", "und"))
    metrics = PipelineMetrics()
    posts = ScoreStep(english, metrics, routes).process(batch).posts
    assert [(p.model_version, p.status, p.unscored_reason) for p in posts] == [
        ("en-1", "scored", None),
        ("es-1", "scored", None),
        (None, "unscored", "unsupported_language"),
        ("en-1", "scored", None),  # no language known: the default model
        ("en-1", "scored", None),
    ]
    assert posts[2].label is None and posts[2].probabilities == ()
    assert [p.offset for p in posts] == [0, 1, 2, 3, 4]  # order kept


def test_a_fallback_reads_what_no_other_model_reads() -> None:
    english, multilingual = scorer("en-1"), scorer("xlm-1")
    routes = Routes(Route(english, frozenset({"en"})), fallback=multilingual)
    posts = ScoreStep(english, PipelineMetrics(), routes).process(batch_of(("c", "ja"))).posts
    assert [p.model_version for p in posts] == ["xlm-1"]


def test_without_routes_one_model_scores_every_language() -> None:
    posts = ScoreStep(scorer("one"), PipelineMetrics()).process(batch_of(("c", "ja"))).posts
    assert [(p.model_version, p.status) for p in posts] == [("one", "scored")]


@dataclass
class Model:
    """What load_routes reads of a loaded model folder."""

    folder: Path
    languages: tuple[str, ...] = ("en",)
    labels: tuple[str, ...] = ("negative", "neutral", "positive")

    @property
    def metadata(self) -> Model:
        return self

    @property
    def version(self) -> str:
        return self.folder.name

    def score(self, texts: Sequence[str]) -> Any:
        raise NotImplementedError


def routes_for(models: dict[str, Model], **languages: Any) -> Routes:
    settings = LanguageSettings(_env_file=None, **languages)  # type: ignore[call-arg]
    primary = Model(Path("/m/default"))
    return load_routes(settings, primary, lambda folder: models[folder.name])  # type: ignore[arg-type,return-value]


def test_each_folder_is_loaded_once_and_must_read_its_language() -> None:
    both = Model(Path("/m/romance"), languages=("es", "pt"))
    routes = routes_for({"romance": both}, language_models="es=/m/romance,pt=/m/romance")
    assert routes.scorer_for("es") is routes.scorer_for("pt") is both
    assert routes.scorer_for("ja") is None
    assert routes.languages == {"en", "es", "pt"}
    with pytest.raises(RoutingError, match=r"configured for 'it'.*declares es, pt"):
        routes_for({"romance": both}, language_models="it=/m/romance")


def test_a_routed_model_must_predict_the_default_models_labels_in_order() -> None:
    odd = Model(Path("/m/xlm"), labels=("positive", "neutral", "negative"))
    with pytest.raises(RoutingError, match="in its order"):
        routes_for({"xlm": odd}, fallback_model="/m/xlm")
