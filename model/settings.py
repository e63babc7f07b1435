"""The model section of the settings: the model the stream is scored with (a folder or a
named model, model/catalogue.py) and where built named models live."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from stream_core.settings import SettingsSection

# The offline default model committed with the code (see model/assets/README.md).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "default"


def default_models_dir() -> Path:
    """Where `model build` puts named models too large to ship: the XDG data folder."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "sentiment-stream" / "models"


class ModelSettings(SettingsSection):
    model: Path = Field(
        DEFAULT_MODEL_DIR,
        description="Model folder, or a named model: default (alias fast) or accurate "
        "(see `model list`).",
    )
    model_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="Where the model runs: auto (CUDA when onnxruntime-gpu finds a GPU, else "
        "CPU), cpu, or cuda (fails without a CUDA provider).",
    )
    model_parallelism: Literal["runs", "ops"] = Field(
        "runs",
        description="How the CPU's cores share a batch: runs (each core scores runs of posts of "
        "its own, one ONNX Runtime thread each; faster on the tens of posts a consumer that "
        "keeps up scores at once) or ops (one run at a time, ONNX Runtime's intra-op threads "
        "on every core). A GPU takes one run at a time either way.",
    )
    models_dir: Path = Field(
        default_factory=default_models_dir,
        description="Where `model build` puts named models (accurate) and looks for them.",
    )
