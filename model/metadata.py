"""``metadata.json``: what a model folder holds, where it came from and how well it scores.

Every model folder (``model export``, ``model train``, the committed default model) carries one;
the scorer trusts nothing about the folder that this file does not state.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

METADATA_FILE = "metadata.json"
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"

# "int8-static": fixed scales, a post's scores depend only on its text (model/quantize.py);
# "int8-dynamic": activation scales computed per batch, scores move with batch-mates;
# "none": fp32. Folders written before int8-static existed say "int8": read as int8-dynamic.
Quantization = Literal["int8-static", "int8-dynamic", "none"]
QUANTIZATIONS: tuple[Quantization, ...] = ("int8-static", "int8-dynamic", "none")
# "cardiffnlp": the tweet normalisation the cardiffnlp/TweetEval models were trained with
# (user mentions -> "@user", links -> "http"); "none": text goes to the tokenizer unchanged.
Preprocessing = Literal["cardiffnlp", "none"]


class MetadataError(ValueError):
    """metadata.json is missing, not JSON, or does not describe a model."""


class LegacyQuantizationWarning(UserWarning):
    """A model folder from before int8-static: its int8 scores depend on batch-mates."""


class ModelMetadata(BaseModel):
    """The contents of a model folder's ``metadata.json``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    source_checkpoint: str = Field(
        description="Hub id or local folder the model was exported from."
    )
    source_revision: str | None = Field(default=None, description="Hub commit when known.")
    labels: tuple[str, ...] = Field(description="Label names in the model's output order.")
    max_length: int = Field(gt=2, description="Texts are truncated to this many tokens.")
    pad_token_id: int = Field(ge=0, description="Token id that pads short texts in a batch.")
    quantization: Quantization
    quantization_details: dict[str, Any] | None = Field(
        default=None, description="How int8-static chose its scales (calibration set, ranges)."
    )
    provenance: str | None = Field(
        default=None, description="Where the checkpoint came from when it is not the source."
    )
    opset: int = Field(gt=0)
    onnx_file: str = ONNX_FILE
    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: datetime
    version: str = Field(description="<name>-<first 12 hex digits of the ONNX file's sha256>.")
    preprocessing: Preprocessing = "none"
    languages: tuple[str, ...] = Field(
        default=("en",),
        description="Languages the model reads (ISO 639-1 codes); posts in others are routed "
        "elsewhere or left unscored (docs/languages.md).",
    )
    metrics: dict[str, Any] | None = Field(default=None, description="Evaluation, once known.")
    training: dict[str, Any] | None = Field(default=None, description="How it was trained.")
    throughput: dict[str, Any] | None = Field(
        default=None, description="Measured tweets/s, with the CPU, threads and command."
    )
    ensemble: dict[str, Any] | None = Field(
        default=None,
        description="For a folder joined by `model ensemble`: its members, their weights and "
        "how their vocabularies were mapped (model/ensemble.py).",
    )

    @field_validator("quantization", mode="before")
    @classmethod
    def _legacy_int8(cls, value: object) -> object:
        if value == "int8":
            warnings.warn(
                'metadata.json says quantization "int8": read as int8-dynamic, whose scores '
                "depend on the posts batched with each one; export it again (int8-static) for "
                "scores that depend only on the post",
                LegacyQuantizationWarning,
                stacklevel=2,
            )
            return "int8-dynamic"
        return value

    @field_validator("labels")
    @classmethod
    def _labels_unique(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ValueError(f"need at least two distinct labels, got {list(labels)}")
        return labels

    @classmethod
    def read(cls, model_dir: Path) -> ModelMetadata:
        path = model_dir / METADATA_FILE
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise MetadataError(f"{path} does not exist") from None
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}"
                for e in error.errors()
            )
            raise MetadataError(f"{path} is not valid model metadata: {problems}") from None

    def write(self, model_dir: Path) -> Path:
        path = model_dir / METADATA_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

    def with_updates(self, **changes: Any) -> ModelMetadata:
        """A copy with some fields replaced (validated, unlike ``model_copy``)."""
        return ModelMetadata.model_validate({**self.model_dump(), **changes})


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def model_version(source_checkpoint: str, onnx_sha256: str) -> str:
    """A short, stable name for one exact ONNX file: ``<checkpoint name>-<sha256[:12]>``."""
    name = Path(source_checkpoint.rstrip("/")).name or "model"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"
    return f"{name}-{onnx_sha256[:12]}"


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
