"""A model folder's reference profile, and how far another profile has drifted from it.

A profile is a set of histograms of what a model reads and says about a body of posts: the
predicted label mix, text length, token count, the share of truncated posts, the rate of
unknown tokens, URLs / mentions / emoji / hashtags, upper-case letters, and the model's
confidence (its highest probability). ``model train``, ``model export`` and ``model profile``
write the reference (``profile.json`` in the model folder, built from the evaluation or
validation posts); monitoring builds the same profile from the posts stored in a window and
compares the two with :func:`compare`::

    builder = ProfileBuilder.for_folder(model_dir)
    online = builder.build(texts, probabilities)
    drift = compare(Profile.read(model_dir), online)   # None read: drift unavailable

The bins are fixed here (not learned from the reference), so every profile of every model is
comparable bin for bin. Figures per feature: the population stability index (PSI, the sum of
``(p - q) ln(p / q)`` over bins, shares floored at ``EPSILON``) and the Jensen-Shannon distance
(base 2, 0 = same, 1 = disjoint). PSI above 0.2 is the usual "shifted" line, 0.1-0.2 "moved".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from model.metadata import ModelMetadata
from model.preprocess import normaliser
from model.scorer import Scorer

PROFILE_FILE = "profile.json"
FORMAT = 1
EPSILON = 1e-4  # the floor of a bin's share in PSI: an empty bin is not an infinite shift

# Left edges of each numeric feature's bins; the last bin is open-ended.
NUMERIC_BINS: dict[str, tuple[float, ...]] = {
    "text_length": (0, 20, 40, 60, 80, 100, 120, 140, 200, 280, 500),
    "token_count": (0, 8, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128),
    "unknown_token_rate": (0, 1e-9, 0.05, 0.1, 0.2, 0.5),
    "uppercase_share": (0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75),
    "confidence": (0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95),
}
BINARY = ("truncated", "has_url", "has_mention", "has_emoji", "has_hashtag")
FEATURES = ("label", *NUMERIC_BINS, *BINARY)

_URL = re.compile(r"https?://|www\.|\bhttp\b", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)@\w")
_HASHTAG = re.compile(r"(?<!\w)#\w")
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u200d\U0001f1e6-\U0001f1ff]"
)


class ProfileError(ValueError):
    """A profile file that cannot be read, or two profiles that cannot be compared."""


@dataclass(frozen=True)
class Histogram:
    """Counts per bin: ``bins`` are category names, or numeric left edges (last bin open)."""

    kind: Literal["categorical", "numeric"]
    bins: tuple[str | float, ...]
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def shares(self) -> npt.NDArray[np.float64]:
        counts = np.asarray(self.counts, dtype=np.float64)
        total = counts.sum()
        return counts / total if total else counts

    def document(self) -> dict[str, Any]:
        return {"kind": self.kind, "bins": list(self.bins), "counts": list(self.counts)}

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Histogram:
        return cls(document["kind"], tuple(document["bins"]), tuple(document["counts"]))


@dataclass(frozen=True)
class Profile:
    """Histograms of ``posts`` posts, one per feature of :data:`FEATURES` (a subset allowed)."""

    posts: int
    features: dict[str, Histogram]
    model_version: str | None = None
    source: str = ""

    def document(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "model_version": self.model_version,
            "source": self.source,
            "posts": self.posts,
            "features": {name: h.document() for name, h in self.features.items()},
        }

    def write(self, model_dir: Path) -> Path:
        path = model_dir / PROFILE_FILE
        path.write_text(json.dumps(self.document(), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, model_dir: Path) -> Profile | None:
        """The folder's reference profile; None when it has none (exported before profiles)."""
        path = model_dir / PROFILE_FILE
        if not path.is_file():
            return None
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("format") != FORMAT:
                raise ProfileError(f"format {document.get('format')!r}, expected {FORMAT}")
            return cls(
                posts=int(document["posts"]),
                features={
                    name: Histogram.from_document(h) for name, h in document["features"].items()
                },
                model_version=document.get("model_version"),
                source=document.get("source", ""),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ProfileError(f"cannot read {path}: {error}") from None


def _numeric(values: npt.NDArray[np.float64], edges: tuple[float, ...]) -> Histogram:
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right") - 1
    counts = np.bincount(np.clip(index, 0, len(edges) - 1), minlength=len(edges))
    return Histogram("numeric", edges, tuple(int(c) for c in counts))


def _categorical(values: Sequence[str], categories: Sequence[str]) -> Histogram:
    counts = [sum(1 for v in values if v == c) for c in categories]
    return Histogram("categorical", tuple(categories), tuple(counts))


def _binary(flags: Sequence[bool]) -> Histogram:
    yes = int(sum(flags))
    return Histogram("categorical", ("no", "yes"), (len(flags) - yes, yes))


def _uppercase_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(c.isupper() for c in letters) / len(letters) if letters else 0.0


class ProfileBuilder:
    """Builds profiles the way one model reads posts: its normalisation, its tokenizer (without
    truncation, to see how many posts it truncates), its labels."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        labels: Sequence[str],
        max_length: int,
        normalise: Callable[[str], str] | None = None,
        model_version: str | None = None,
    ) -> None:
        self._tokenizer = tokenizer
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        unk = getattr(tokenizer.model, "unk_token", None)
        self._unk_id = tokenizer.token_to_id(unk) if unk else None
        self.labels = tuple(labels)
        self.max_length = max_length
        self._normalise = normalise
        self.model_version = model_version

    @classmethod
    def for_folder(cls, model_dir: Path) -> ProfileBuilder:
        metadata = ModelMetadata.read(model_dir)
        return cls(
            Tokenizer.from_file(str(model_dir / "tokenizer.json")),
            metadata.labels,
            metadata.max_length,
            normaliser(metadata.preprocessing),
            metadata.version,
        )

    def build(
        self,
        texts: Sequence[str],
        probabilities: npt.NDArray[np.floating[Any]],
        *,
        source: str = "",
    ) -> Profile:
        """The profile of ``texts``, scored ``probabilities`` (rows in ``labels`` order)."""
        if len(texts) != len(probabilities):
            raise ValueError(f"{len(texts)} texts but {len(probabilities)} rows of probabilities")
        prepared = [self._normalise(t) for t in texts] if self._normalise else list(texts)
        encodings = self._tokenizer.encode_batch_fast(prepared) if prepared else []
        tokens = np.zeros(len(texts))
        unknown = np.zeros(len(texts))
        for i, encoding in enumerate(encodings):
            # Inline loops: a window holds a few thousand posts, numpy per post would cost more.
            mask = encoding.special_tokens_mask
            n = len(mask) - sum(mask)
            tokens[i] = len(mask)
            if n and self._unk_id is not None:
                pairs = zip(encoding.ids, mask, strict=True)
                unknown[i] = sum(1 for t, s in pairs if t == self._unk_id and not s) / n
        probabilities = np.asarray(probabilities, dtype=np.float64).reshape(len(texts), -1)
        predicted = [self.labels[i] for i in probabilities.argmax(axis=1)] if len(texts) else []
        numeric = {
            "text_length": np.fromiter(map(len, texts), dtype=np.float64, count=len(texts)),
            "token_count": tokens,
            "unknown_token_rate": unknown,
            "uppercase_share": np.fromiter(map(_uppercase_share, texts), np.float64, len(texts)),
            "confidence": probabilities.max(axis=1) if len(texts) else np.zeros(0),
        }
        features = {"label": _categorical(predicted, self.labels)}
        features |= {name: _numeric(numeric[name], edges) for name, edges in NUMERIC_BINS.items()}
        features |= {
            "truncated": _binary([bool(t > self.max_length) for t in tokens]),
            "has_url": _binary([bool(_URL.search(t)) for t in texts]),
            "has_mention": _binary([bool(_MENTION.search(t)) for t in texts]),
            "has_emoji": _binary([bool(_EMOJI.search(t)) for t in texts]),
            "has_hashtag": _binary([bool(_HASHTAG.search(t)) for t in texts]),
        }
        return Profile(len(texts), features, self.model_version, source)


# --- comparison ------------------------------------------------------------------------------


def psi(reference: npt.NDArray[np.float64], online: npt.NDArray[np.float64]) -> float:
    """Population stability index of two share vectors, each share floored at EPSILON."""
    p = np.maximum(reference, EPSILON)
    q = np.maximum(online, EPSILON)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: npt.NDArray[np.float64], online: npt.NDArray[np.float64]) -> float:
    """Jensen-Shannon distance (base 2: 0 same, 1 disjoint) of two share vectors."""
    p, q = reference / reference.sum(), online / online.sum()
    m = (p + q) / 2

    def kl(a: npt.NDArray[np.float64]) -> float:
        kept = a > 0
        return float(np.sum(a[kept] * np.log2(a[kept] / m[kept])))

    return float(np.sqrt(max(0.0, (kl(p) + kl(q)) / 2)))


@dataclass(frozen=True)
class FeatureDrift:
    """One feature of an online profile against the reference."""

    feature: str
    psi: float
    js_distance: float
    bins: tuple[str | float, ...]
    reference: tuple[float, ...]  # shares per bin
    online: tuple[float, ...]
    online_posts: int
    reference_posts: int

    def details(self) -> dict[str, Any]:
        return {
            "bins": list(self.bins),
            "reference": [round(s, 5) for s in self.reference],
            "online": [round(s, 5) for s in self.online],
        }


def compare(reference: Profile, online: Profile) -> list[FeatureDrift]:
    """PSI and Jensen-Shannon distance per feature both profiles have with the same bins
    (features with no post on either side are left out)."""
    drifts = []
    for name, ours in online.features.items():
        theirs = reference.features.get(name)
        if theirs is None or ours.total == 0 or theirs.total == 0:
            continue
        if tuple(theirs.bins) != tuple(ours.bins):
            raise ProfileError(f"feature {name}: reference bins {theirs.bins} != {ours.bins}")
        p, q = theirs.shares(), ours.shares()
        drifts.append(
            FeatureDrift(
                feature=name,
                psi=psi(p, q),
                js_distance=js_distance(p, q),
                bins=ours.bins,
                reference=tuple(float(s) for s in p),
                online=tuple(float(s) for s in q),
                online_posts=ours.total,
                reference_posts=theirs.total,
            )
        )
    return drifts


def write_reference_profile(
    model_dir: Path, texts: Sequence[str], *, source: str, batch_size: int = 64
) -> Profile:
    """Score ``texts`` with the folder's model and write their profile as its reference."""
    scorer = Scorer.load(model_dir, batch_size=batch_size)
    kept = [t for t in texts if t.strip()]
    probabilities = scorer.score(kept).probabilities
    profile = ProfileBuilder.for_folder(model_dir).build(kept, probabilities, source=source)
    profile.write(model_dir)
    return profile
