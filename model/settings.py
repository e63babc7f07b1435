"""The model section of the settings: the folder the stream is scored with."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from stream_core.settings import SettingsSection

# The offline default model committed with the code (see model/assets/README.md).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "default"


class ModelSettings(SettingsSection):
    model: Path = Field(DEFAULT_MODEL_DIR, description="Model folder (see `model export`).")
