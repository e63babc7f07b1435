"""The simulator's multilingual sample: shipped, attributed, identified, mixed evenly."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from language.identify import Identifier
from model.data import SAMPLE_DIR, DataError, read_split
from producer_sim.languages import SAMPLE_DIR as UMSAB_DIR
from producer_sim.languages import mixed, read_sample, sample_languages
from producer_sim.simulator import Simulator, SimulatorConfig


def test_the_sample_has_200_labelled_tweets_per_language_and_its_attribution() -> None:
    assert sample_languages() == ["ar", "de", "es", "fr", "hi", "it", "pt"]
    for lang in sample_languages():
        tweets = read_sample(lang)
        assert len(tweets) == 200
        assert {t.lang for t in tweets} == {lang}
        assert {t.label_id for t in tweets} == {0, 1, 2}
    readme = (UMSAB_DIR / "README.md").read_text()
    assert "XLM-T" in readme and "cardiffnlp/xlm-t" in readme
    with pytest.raises(DataError, match="no bundled tweets in 'ja'"):
        read_sample("ja")


def test_mixing_spreads_each_language_through_the_replay() -> None:
    english = read_split(SAMPLE_DIR, "val[0:600]")
    tweets = mixed(english, ["es", "ar"])
    assert len(tweets) == 1000
    for quarter in range(4):
        stretch = Counter(t.lang for t in tweets[quarter * 250 : (quarter + 1) * 250])
        assert stretch == {None: 150, "es": 50, "ar": 50}


@pytest.mark.parametrize("lang", ["ar", "de", "es", "fr", "it", "pt"])
def test_the_sample_is_identified_as_its_language(lang: str) -> None:
    identifier = Identifier()
    found = Counter(identifier.identify(t.text).lang for t in read_sample(lang))
    assert found[lang] >= 0.85 * 200, found.most_common(4)


def post_langs(omit_lang: bool) -> list[str | None]:
    tweets = mixed(read_split(SAMPLE_DIR, "val[0:200]"), ["de"])[:6]
    config = SimulatorConfig(topic="t", tweets=tweets, seed=1, omit_lang=omit_lang)
    simulator = Simulator(config, {"bootstrap.servers": "127.0.0.1:1"})
    messages = [simulator._next_message(seq, 0.0) for seq in range(6)]
    return [json.loads(m.value).get("lang") for m in messages if m is not None]


def test_posts_carry_their_language_unless_told_to_omit_it() -> None:
    assert post_langs(omit_lang=False) == ["en", "de"] * 3  # English: the stream's own lang
    assert post_langs(omit_lang=True) == [None] * 6
