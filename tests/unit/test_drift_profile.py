"""model/profile.py: the reference profile and its comparison, checked against scipy."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

from model.profile import (
    EPSILON,
    FEATURES,
    PROFILE_FILE,
    Histogram,
    Profile,
    ProfileBuilder,
    ProfileError,
    compare,
    js_distance,
    psi,
)
from model.settings import DEFAULT_MODEL_DIR

counts = st.lists(st.integers(0, 1000), min_size=2, max_size=12)


def shares(values: list[int]) -> npt.NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    return np.asarray(array / array.sum(), dtype=np.float64)


@settings(max_examples=200, deadline=None)
@given(counts, st.data())
def test_psi_is_the_symmetric_kl_divergence_of_the_floored_shares(
    reference: list[int], data: st.DataObject
) -> None:
    online = data.draw(
        st.lists(st.integers(0, 1000), min_size=len(reference), max_size=len(reference))
    )
    if sum(reference) == 0 or sum(online) == 0:
        return
    p, q = shares(reference), shares(online)
    floored_p = np.maximum(p, EPSILON) / np.maximum(p, EPSILON).sum()
    floored_q = np.maximum(q, EPSILON) / np.maximum(q, EPSILON).sum()
    expected = entropy(floored_q, floored_p) + entropy(floored_p, floored_q)
    assert psi(p, q) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert jensenshannon(p, q, base=2) == pytest.approx(js_distance(p, q), abs=1e-7)


def test_textbook_figures() -> None:
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    assert psi(p, q) == pytest.approx(0.4 * math.log(0.9 / 0.5) - 0.4 * math.log(0.1 / 0.5))
    assert js_distance(p, p) == 0
    assert js_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1)


@pytest.fixture(scope="module")
def builder() -> ProfileBuilder:
    return ProfileBuilder.for_folder(DEFAULT_MODEL_DIR)


def test_the_profile_counts_what_posts_look_like(builder: ProfileBuilder) -> None:
    texts = [
        "good morning @anna #monday http://x.co",
        "THIS IS ALL CAPS AND VERY LOUD",
        "\U0001f600\U0001f600",
        "word " * 300,
    ]
    probabilities = np.array(
        [[0.1, 0.2, 0.7], [0.8, 0.1, 0.1], [0.34, 0.33, 0.33], [0.2, 0.6, 0.2]]
    )
    profile = builder.build(texts, probabilities, source="test")
    assert set(profile.features) == set(FEATURES)
    assert profile.posts == 4
    f = profile.features
    assert f["label"].counts == (2, 1, 1)  # argmax: 0.34 is negative
    assert f["has_url"].counts == (3, 1)
    assert f["has_mention"].counts == (3, 1)
    assert f["has_hashtag"].counts == (3, 1)
    assert f["has_emoji"].counts == (3, 1)
    assert f["truncated"].counts == (3, 1)  # 300 words are over max_length tokens
    assert sum(f["uppercase_share"].counts[-1:]) == 1  # only the shouting post is all caps
    assert f["confidence"].counts[0] == 1  # 0.34: the lowest bin
    for histogram in f.values():
        assert histogram.total == 4


def test_round_trip_and_a_folder_without_a_profile(builder: ProfileBuilder, tmp_path: Path) -> None:
    assert Profile.read(tmp_path) is None  # exported before profiles: drift unavailable
    profile = builder.build(["a post", "another post"], np.array([[1, 0, 0], [0, 0, 1.0]]))
    profile.write(tmp_path)
    again = Profile.read(tmp_path)
    assert again == profile
    assert all(d.psi == 0 and d.js_distance == 0 for d in compare(profile, again))
    (tmp_path / PROFILE_FILE).write_text('{"format": 99}')
    with pytest.raises(ProfileError, match="format"):
        Profile.read(tmp_path)


def test_comparison_needs_the_same_bins() -> None:
    a = Profile(2, {"x": Histogram("numeric", (0, 1), (1, 1))})
    b = Profile(2, {"x": Histogram("numeric", (0, 2), (1, 1))})
    with pytest.raises(ProfileError, match="bins"):
        compare(a, b)
    empty = Profile(0, {"x": Histogram("numeric", (0, 1), (0, 0))})
    assert compare(a, empty) == []  # nothing to compare: no figure, never a 0


def test_the_shipped_default_has_a_reference_profile() -> None:
    profile = Profile.read(DEFAULT_MODEL_DIR)
    assert profile is not None
    assert profile.posts == 2000
    assert set(profile.features) == set(FEATURES)
