"""Rebuild an fp32 PyTorch checkpoint from a BERT model folder exported as int8-dynamic.

The committed default model was exported int8-dynamic and its fp32 checkpoint was not kept. To
export it in another format (``model reexport --checkpoint``), its weights are dequantised back
into a ``BertForSequenceClassification`` checkpoint: ``(q - zero_point) * scale`` for every int8
weight, the fused Q/K/V weights of each ``QAttention`` split again. The result is the int8 model's
weights in fp32 (the rounding of the first quantisation stays), not the original checkpoint.

Usage: ``python -m model.rebuild --model model/assets/default --out DIR``.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from model.metadata import ModelMetadata

# MatMulInteger outputs name the module they came from, e.g. /bert/encoder/layer.3/intermediate/...
_LAYER_MATMUL = re.compile(r"layer\.(\d+)/(attention/output|intermediate|output)/dense/")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

Array = npt.NDArray[np.float32]


class RebuildError(ValueError):
    """The folder is not an int8-dynamic BERT export this module knows how to invert."""


def _dequantised(initializers: dict[str, Any], prefix: str) -> Array:
    from onnx import numpy_helper

    quantised = numpy_helper.to_array(initializers[f"{prefix}_quantized"]).astype(np.float32)
    scale = numpy_helper.to_array(initializers[f"{prefix}_scale"]).astype(np.float32)
    zero = numpy_helper.to_array(initializers[f"{prefix}_zero_point"]).astype(np.float32)
    return np.asarray((quantised - zero) * scale, dtype=np.float32)


def dequantised_state_dict(onnx_path: Path, layers: int) -> dict[str, Array]:
    """``BertForSequenceClassification`` weights (fp32) read from an int8-dynamic ONNX file."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: i for i in graph.initializer}
    state: dict[str, Array] = {
        name: numpy_helper.to_array(init).astype(np.float32)
        for name, init in inits.items()
        if name.startswith(("bert.", "classifier.")) and init.data_type == onnx.TensorProto.FLOAT
    }
    for table in ("word", "position", "token_type"):
        name = f"bert.embeddings.{table}_embeddings.weight"
        state[name] = _dequantised(inits, name)
    attention = 0
    for node in graph.node:
        if node.op_type == "QAttention":
            qkv = _dequantised(inits, node.input[1].removesuffix("_quantized"))
            bias = numpy_helper.to_array(inits[node.input[2]]).astype(np.float32)
            prefix = f"bert.encoder.layer.{attention}.attention.self"
            for index, part in enumerate(("query", "key", "value")):
                columns = slice(index * qkv.shape[1] // 3, (index + 1) * qkv.shape[1] // 3)
                state[f"{prefix}.{part}.weight"] = np.ascontiguousarray(qkv[:, columns].T)
                state[f"{prefix}.{part}.bias"] = bias[columns]
            attention += 1
        elif node.op_type == "MatMulInteger":
            weight = _dequantised(inits, node.input[1].removesuffix("_quantized")).T
            found = _LAYER_MATMUL.search(node.output[0])
            if found:
                module = f"bert.encoder.layer.{found[1]}.{found[2].replace('/', '.')}.dense"
            elif node.input[1].startswith(("bert.pooler.dense", "classifier")):
                module = node.input[1].split(".weight")[0]
            else:
                raise RebuildError(f"{onnx_path}: cannot tell which weight {node.name} holds")
            state[f"{module}.weight"] = np.ascontiguousarray(weight)
    if attention != layers:
        raise RebuildError(f"{onnx_path}: {attention} QAttention nodes, config says {layers}")
    return state


def rebuild_checkpoint(model_dir: Path, out_dir: Path) -> Path:
    """Write a Hugging Face checkpoint folder (weights, config, tokenizer) into ``out_dir``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    metadata = ModelMetadata.read(model_dir)
    if metadata.quantization not in ("int8", "int8-dynamic"):
        raise RebuildError(f"{model_dir} is {metadata.quantization}, not int8-dynamic")
    config = BertConfig.from_pretrained(model_dir)
    model = BertForSequenceClassification(config).eval()
    state = dequantised_state_dict(model_dir / metadata.onnx_file, config.num_hidden_layers)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state) - {"bert.embeddings.position_ids"})
    if missing:
        raise RebuildError(f"{model_dir}: no weights found for {missing[:5]}")
    tensors = {name: torch.from_numpy(state[name]) for name in expected if name in state}
    model.load_state_dict(tensors, strict=False)
    model.save_pretrained(out_dir)
    for name in _TOKENIZER_FILES:
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, out_dir / name)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="int8-dynamic BERT folder")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    args = parser.parse_args(argv)
    print(rebuild_checkpoint(args.model, args.out))


if __name__ == "__main__":
    main()
