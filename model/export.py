"""Hugging Face sequence-classification checkpoint -> self-contained ONNX model folder.

Three steps, the optimum way: export to ONNX (``optimum.exporters.onnx``), ONNX Runtime graph
optimisations (``ORTOptimizer``: attention / LayerNorm / GELU fusions) and, by default, int8
dynamic quantisation (``ORTQuantizer``). The folder gets the ONNX file, the tokenizer files and
``metadata.json``. Heavy imports (torch, transformers, optimum) happen inside the functions.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import structlog

from model.metadata import (
    ONNX_FILE,
    TOKENIZER_FILE,
    ModelMetadata,
    Preprocessing,
    Quantization,
    file_sha256,
    model_version,
    utc_now,
)

log = structlog.get_logger(__name__)

DEFAULT_CHECKPOINT = "cardiffnlp/twitter-roberta-base-sentiment-latest"
DEFAULT_MAX_LENGTH = 128  # tweets are at most 280 characters: ~100 tokens at worst
# Files copied next to the ONNX file: the scorer needs tokenizer.json; the rest let
# transformers' AutoTokenizer / AutoConfig open the folder too.
_COPIED_FILES = (
    TOKENIZER_FILE,
    "tokenizer_config.json",
    "special_tokens_map.json",
    "config.json",
)


class ModelExportError(RuntimeError):
    """The checkpoint cannot be exported; the message says what to do about it."""


def _is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _unreachable_message(checkpoint: str, cause: BaseException) -> str:
    where = (
        "HF_HUB_OFFLINE is set, so only the local Hugging Face cache was searched"
        if _is_offline()
        else "it is not a local folder and the Hugging Face hub did not provide it"
    )
    return (
        f"cannot load checkpoint {checkpoint!r}: {where} ({type(cause).__name__}: {cause}). "
        "With no network, pass a local checkpoint folder (e.g. one saved by `model train`) or "
        "download it once where the hub is reachable and set HF_HUB_OFFLINE=1; otherwise check "
        "the hub id and --revision."
    )


def _labels_from_config(config: dict[str, Any]) -> tuple[str, ...]:
    id2label = config.get("id2label") or {}
    return tuple(id2label[key] for key in sorted(id2label, key=int))


def _opset(onnx_path: Path) -> int:
    import onnx

    proto = onnx.load(str(onnx_path), load_external_data=False)
    return max(int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def _export_onnx(checkpoint: str, work: Path, revision: str | None, opset: int | None) -> Path:
    from optimum.exporters.onnx import main_export

    out = work / "exported"
    try:
        main_export(
            checkpoint,
            out,
            task="text-classification",
            opset=opset,
            revision=revision or "main",
            local_files_only=_is_offline(),
        )
    except Exception as error:  # hub, IO and conversion errors all end the export the same way
        if Path(checkpoint).is_dir():
            raise ModelExportError(
                f"cannot export local checkpoint {checkpoint}: {type(error).__name__}: {error}. "
                "It must be a Hugging Face sequence-classification checkpoint folder "
                "(config.json, weights, fast tokenizer)."
            ) from error
        raise ModelExportError(_unreachable_message(checkpoint, error)) from error
    return out


def _optimise(exported: Path, work: Path) -> Path:
    """Graph fusions at level 2: hardware-independent, so the file runs on any x86/ARM CPU."""
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import OptimizationConfig

    out = work / "optimised"
    optimiser = ORTOptimizer.from_pretrained(exported, file_names=["model.onnx"])
    optimiser.optimize(OptimizationConfig(optimization_level=2), save_dir=out)
    return out / "model_optimized.onnx"


def _quantise(optimised: Path, work: Path) -> Path:
    """int8 dynamic quantisation: int8 weights, activations quantised on the fly per batch.

    ONNX Runtime's own ``quantize_dynamic`` rather than ORTQuantizer: after the fusions the graph
    holds contrib ops (Attention, SkipLayerNormalization) that shape inference cannot type, and
    only ``DefaultTensorType`` gets the quantiser past them.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = work / "model_quantised.onnx"
    quantize_dynamic(
        optimised,
        out,
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return out


def _tokenizer_limits(exported: Path, max_length: int) -> tuple[int, int]:
    """(pad token id, max length capped at what the tokenizer/model accept)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(exported)
    pad = tokenizer.pad_token_id
    pad_id = int(pad if pad is not None else tokenizer.eos_token_id or 0)
    return pad_id, min(max_length, int(tokenizer.model_max_length))


def _source_revision(checkpoint: str, revision: str | None) -> str | None:
    """The hub commit the export came from; None for a local folder."""
    if Path(checkpoint).is_dir():
        return None
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(checkpoint, revision=revision, local_files_only=True)
    commit: str | None = getattr(config, "_commit_hash", None)
    return commit or revision


def export_model(
    checkpoint: str,
    out_dir: Path,
    *,
    quantization: Quantization = "int8",
    max_length: int = DEFAULT_MAX_LENGTH,
    revision: str | None = None,
    preprocessing: Preprocessing | None = None,
    opset: int | None = None,
    training: dict[str, Any] | None = None,
) -> ModelMetadata:
    """Export ``checkpoint`` (hub id or local folder) into ``out_dir``; returns its metadata.

    ``preprocessing`` defaults to the cardiffnlp tweet normalisation for cardiffnlp checkpoints.
    """
    if preprocessing is None:
        preprocessing = "cardiffnlp" if "cardiffnlp" in checkpoint.lower() else "none"
    if Path(checkpoint).expanduser().is_dir():
        checkpoint = str(Path(checkpoint).expanduser())
    elif checkpoint.startswith((".", "/", "~")):
        raise ModelExportError(f"checkpoint folder {checkpoint} does not exist")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="export-", dir=out_dir) as tmp:
        work = Path(tmp)
        log.info("exporting to ONNX", checkpoint=checkpoint, out=str(out_dir))
        exported = _export_onnx(checkpoint, work, revision, opset)
        config = json.loads((exported / "config.json").read_text(encoding="utf-8"))
        labels = _labels_from_config(config)
        if len(labels) < 2:
            raise ModelExportError(f"{checkpoint} config.json names no labels (id2label)")
        if not (exported / TOKENIZER_FILE).is_file():
            raise ModelExportError(f"{checkpoint} has no fast tokenizer (tokenizer.json)")
        pad_token_id, max_length = _tokenizer_limits(exported, max_length)
        final = _optimise(exported, work)
        if quantization == "int8":
            log.info("quantising to int8", checkpoint=checkpoint)
            final = _quantise(final, work)
        shutil.copyfile(final, out_dir / ONNX_FILE)
        for name in _COPIED_FILES:
            if (exported / name).is_file():
                shutil.copyfile(exported / name, out_dir / name)
        sha = file_sha256(out_dir / ONNX_FILE)
        metadata = ModelMetadata(
            source_checkpoint=checkpoint,
            source_revision=_source_revision(checkpoint, revision),
            labels=labels,
            max_length=max_length,
            pad_token_id=pad_token_id,
            quantization=quantization,
            opset=_opset(out_dir / ONNX_FILE),
            onnx_sha256=sha,
            created_at=utc_now(),
            version=model_version(checkpoint, sha),
            preprocessing=preprocessing,
            training=training,
        )
    metadata.write(out_dir)
    log.info("model exported", out=str(out_dir), version=metadata.version)
    return metadata
