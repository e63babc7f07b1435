"""The registry's section of the settings: whether the consumers follow the registry, where
they keep the versions they fetched, and how often they look at the latest."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from stream_core.settings import SettingsSection


def default_cache_dir() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "sentiment-stream" / "registry"


class RegistrySettings(SettingsSection):
    model_registry: bool = Field(
        True,
        description="Serve the registry's active version and follow promotions live (the"
        " --model folder is registered and activated when the registry has none).",
    )
    model_cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Where the consumer keeps the registry versions it fetched (verified).",
    )
    model_poll_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Re-read the active version at least this often, in s (NOTIFY is faster).",
    )
    auto_rollback: bool = Field(
        False,
        description="Roll back by itself when the active version's online macro recall falls"
        " below the version it replaced (one elected replica judges).",
    )
    auto_rollback_margin: float = Field(
        0.05, ge=0, le=1, description="Macro recall the active version may lose before that."
    )
    auto_rollback_min_labelled: int = Field(
        200, ge=1, description="Labelled posts each version needs before it is judged."
    )
    auto_rollback_check_s: float = Field(
        10.0, gt=0, le=3600, description="How often the elected replica judges, in s."
    )
