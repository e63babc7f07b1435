"""Hugging Face sequence-classification checkpoint -> self-contained ONNX model folder.

Three steps: export to ONNX (``optimum.exporters.onnx``), ONNX Runtime graph optimisations
(``ORTOptimizer``: LayerNorm / GELU fusions, and attention fusion unless the format needs the Q,
K and V MatMuls apart) and quantisation. Formats: ``int8-static`` (the default, model/quantize.py:
fixed scales calibrated on the bundled val tweets, so scores do not depend on batch-mates),
``int8-dynamic`` (ONNX Runtime's ``quantize_dynamic``: activation scales per batch) and ``none``
(fp32). The folder gets the ONNX file, the tokenizer files and
``metadata.json``. Heavy imports (torch, transformers, optimum) happen inside the functions.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
SMOOTHQUANT_TWEETS = 256  # calibration tweets of SmoothQuant's per-channel maxima
# Files copied next to the ONNX file: the scorer needs tokenizer.json; the rest let
# transformers' AutoTokenizer / AutoConfig open the folder too.
TOKENIZER_FILES = (TOKENIZER_FILE, "tokenizer_config.json", "special_tokens_map.json")
_COPIED_FILES = (*TOKENIZER_FILES, "config.json")


class ModelExportError(RuntimeError):
    """The checkpoint cannot be exported; the message says what to do about it."""


def _is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def checkpoint_unavailable_message(checkpoint: str, cause: BaseException) -> str:
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
        raise ModelExportError(checkpoint_unavailable_message(checkpoint, error)) from error
    return out


def _optimise(exported: Path, work: Path, *, fuse_attention: bool = True) -> Path:
    """Graph fusions at level 2: hardware-independent, so the file runs on any x86/ARM CPU.

    ``fuse_attention=False`` keeps attention as plain MatMuls (and the embeddings unfused), so
    int8-static can quantise the Q, K and V projections and the word embeddings.
    """
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import OptimizationConfig

    out = work / ("optimised" if fuse_attention else "optimised-unfused")
    optimiser = ORTOptimizer.from_pretrained(exported, file_names=["model.onnx"])
    config = OptimizationConfig(
        optimization_level=2,
        disable_attention_fusion=not fuse_attention,
        disable_embed_layer_norm_fusion=True,
    )
    optimiser.optimize(config, save_dir=out)
    return out / "model_optimized.onnx"


def _quantise_static(
    fp32_folder: Path, work: Path, smoothquant: float | None = None
) -> tuple[Path, dict[str, Any]]:
    """int8-static (model/quantize.py), calibrated on the bundled val tweets as the scorer
    tokenises them (the fp32 folder is loaded by the real scorer for that); with
    ``smoothquant`` (alpha), SmoothQuant (model/smoothing.py) first, calibrated on the first
    :data:`SMOOTHQUANT_TWEETS` of them."""
    from model.data import SAMPLE_DIR, read_split
    from model.quantize import quantise_file
    from model.scorer import Scorer, available_cores

    # One run at a time ("ops"): the calibration feeds are then cut the same way on every
    # machine; equal shares a core would make the scales, and so the graph, depend on the cores.
    scorer = Scorer.load(fp32_folder, threads=available_cores(), batch_size=32, parallelism="ops")
    texts = [t.text for t in read_split(SAMPLE_DIR, "val")]
    source = fp32_folder / ONNX_FILE
    smoothing: dict[str, Any] | None = None
    if smoothquant is not None:
        from model.smoothing import smooth_file

        log.info("smoothing activation outliers (SmoothQuant)", alpha=smoothquant)
        some = texts[:SMOOTHQUANT_TWEETS]
        smoothed = work / "model_smoothed.onnx"
        smoothing = smooth_file(
            source,
            smoothed,
            (feeds for _rows, feeds in scorer.batches(some)),
            smoothquant,
            threads=available_cores(),
            calibration=f"{len(some)} bundled TweetEval val tweets (model.data.SAMPLE_DIR)",
        )
        source = smoothed
    out = work / "model_static.onnx"
    details = quantise_file(
        source,
        out,
        (feeds for _rows, feeds in scorer.batches(texts)),
        threads=available_cores(),
    )
    details["calibration"] = f"{len(texts)} bundled TweetEval val tweets (model.data.SAMPLE_DIR)"
    if smoothing is not None:
        details["smoothquant"] = smoothing
    return out, details


def _quantise_dynamic(optimised: Path, work: Path) -> Path:
    """int8 dynamic quantisation: int8 weights, activations quantised on the fly per batch.

    ONNX Runtime's own ``quantize_dynamic`` rather than ORTQuantizer: after the fusions the graph
    holds contrib ops (Attention, SkipLayerNormalization) that shape inference cannot type, and
    only ``DefaultTensorType`` gets the quantiser past them.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = work / "model_quantised.onnx"
    with _root_logger_level(logging.WARNING):  # the quantiser logs every tensor at INFO
        quantize_dynamic(
            optimised,
            out,
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return out


@contextmanager
def _root_logger_level(level: int) -> Iterator[None]:
    root = logging.getLogger()
    previous = root.level
    root.setLevel(max(level, previous))
    try:
        yield
    finally:
        root.setLevel(previous)


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
    quantization: Quantization = "int8-static",
    max_length: int = DEFAULT_MAX_LENGTH,
    revision: str | None = None,
    preprocessing: Preprocessing | None = None,
    opset: int | None = None,
    training: dict[str, Any] | None = None,
    provenance: str | None = None,
    smoothquant: float | None = None,
) -> ModelMetadata:
    """Export ``checkpoint`` (hub id or local folder) into ``out_dir``; returns its metadata.

    ``preprocessing`` defaults to the cardiffnlp tweet normalisation for cardiffnlp checkpoints;
    ``provenance`` is free text stored in metadata.json (where the checkpoint came from);
    ``smoothquant``: SmoothQuant's alpha (model/smoothing.py), int8-static only.
    """
    if smoothquant is not None and quantization != "int8-static":
        raise ModelExportError(
            f"SmoothQuant prepares a graph for int8-static, not {quantization}: "
            "drop --smoothquant or export with --quantize int8-static"
        )
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
        common: dict[str, Any] = {
            "source_checkpoint": checkpoint,
            "labels": labels,
            "max_length": max_length,
            "pad_token_id": pad_token_id,
            "preprocessing": preprocessing,
        }
        details: dict[str, Any] | None = None
        if quantization == "int8-static":
            unfused = _optimise(exported, work, fuse_attention=False)
            fp32_folder = work / "fp32"
            _write_folder(unfused, exported, fp32_folder, **common)
            log.info("quantising to int8-static", checkpoint=checkpoint)
            final, details = _quantise_static(fp32_folder, work, smoothquant)
        else:
            final = _optimise(exported, work)
            if quantization == "int8-dynamic":
                log.info("quantising to int8-dynamic", checkpoint=checkpoint)
                final = _quantise_dynamic(final, work)
        metadata = _write_folder(
            final,
            exported,
            out_dir,
            **common,
            quantization=quantization,
            source_revision=_source_revision(checkpoint, revision),
            training=training,
            quantization_details=details,
            provenance=provenance,
        )
    log.info("model exported", out=str(out_dir), version=metadata.version)
    return metadata


def _write_folder(
    onnx_file: Path,
    exported: Path,
    out_dir: Path,
    *,
    quantization: Quantization = "none",
    **fields: Any,
) -> ModelMetadata:
    """Copy the ONNX file and the tokenizer files into ``out_dir`` and write its metadata.

    Files already in ``out_dir`` that an export does not write (e.g. a drift profile) are kept.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_file, out_dir / ONNX_FILE)
    for name in _COPIED_FILES:
        if (exported / name).is_file():
            shutil.copyfile(exported / name, out_dir / name)
    sha = file_sha256(out_dir / ONNX_FILE)
    metadata = ModelMetadata(
        quantization=quantization,
        opset=_opset(out_dir / ONNX_FILE),
        onnx_sha256=sha,
        created_at=utc_now(),
        version=model_version(fields["source_checkpoint"], sha),
        **fields,
    )
    metadata.write(out_dir)
    return metadata
