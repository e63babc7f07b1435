"""``--download``: fetch the public TweetEval sentiment files into a cache folder."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import structlog

from model.data import TASK, SplitSpec

log = structlog.get_logger(__name__)

TWEETEVAL_URL = "https://raw.githubusercontent.com/cardiffnlp/tweeteval/main/datasets"


class DownloadError(Exception):
    """The files could not be fetched (offline, blocked, missing upstream)."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sentiment-stream" / "tweeteval"


def _fetch(url: str, target: Path, timeout_s: float) -> None:
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - https URL
            partial.write_bytes(response.read())
    except (urllib.error.URLError, OSError, ValueError) as error:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"could not download {url}: {error}") from error
    partial.replace(target)  # atomic: a half-written file never looks complete


def is_downloaded(splits: list[str], cache_dir: Path) -> bool:
    names = {SplitSpec.parse(split).name for split in splits}
    return all((cache_dir / TASK / f"{name}_labels.txt").exists() for name in names)


def download_tweeteval(
    splits: list[str],
    cache_dir: Path | None = None,
    base_url: str = TWEETEVAL_URL,
    timeout_s: float = 30.0,
) -> Path:
    """Make sure ``cache_dir`` holds the named splits; returns it, usable as ``--data``."""
    cache_dir = cache_dir or default_cache_dir()
    (cache_dir / TASK).mkdir(parents=True, exist_ok=True)
    wanted = [cache_dir / TASK / "mapping.txt"]
    for name in dict.fromkeys(SplitSpec.parse(split).name for split in splits):
        wanted += [cache_dir / TASK / f"{name}_text.txt", cache_dir / TASK / f"{name}_labels.txt"]
    for target in wanted:
        if target.exists():
            continue
        url = f"{base_url.rstrip('/')}/{TASK}/{target.name}"
        log.info("downloading", url=url, target=str(target))
        _fetch(url, target, timeout_s)
    return cache_dir
