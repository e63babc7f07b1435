"""SmoothQuant (Xiao et al., 2023) for ONNX graphs: move activation outliers into the weights
before int8-static quantisation.

Some encoders (all-mpnet-base-v2 among them) have a few activation channels that reach 64-100
while 99.9% of the values stay under 9. int8-static gives each MatMul input one scale
(model/quantize.py), so such a channel stretches the range and leaves the bulk of the values
only a few levels: plain int8 export of that mpnet checkpoint lost 8 points of macro recall.

For a MatMul ``X @ W``, any positive per-input-channel vector ``s`` gives the same product:
``(X / s) @ (diag(s) W)``. With ``s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)`` (``max|X_j|``
measured on calibration tweets) the activation's outlier channels shrink and the weight's rows
grow, so both quantise well: the weights have one scale per output channel, which absorbs the
growth. ``alpha`` (0..1) is how much of the difficulty moves to the weights; 0.75 suits mpnet.

Each smoothed activation gets one ``Mul`` by ``1 / s`` (shared by the MatMuls that read it: Q, K
and V read one tensor) and the weights are scaled once, at export. In a post-LayerNorm encoder
(BERT, MPNet) the LayerNorm's output also feeds the residual path, so the division cannot be
folded into the LayerNorm: the ``Mul`` costs one element-wise pass per smoothed tensor.
The rewritten fp32 graph computes the same function (tested to float tolerance).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from model.quantize import Feeds, probe_session, token_rows, weight_matmuls

log = structlog.get_logger(__name__)

# Smoothing factors are kept in this range: a dead channel (all zeros in calibration) or an
# all-zero weight row would otherwise give 0 or infinity.
_FACTOR_BOUNDS = (1e-4, 1e4)


def smoothed_inputs(model: Any) -> dict[str, list[int]]:
    """Each activation that a weight MatMul reads -> the indices of the MatMuls reading it."""
    readers: dict[str, list[int]] = {}
    for index in weight_matmuls(model):
        readers.setdefault(model.graph.node[index].input[0], []).append(index)
    return readers


def channel_maxima(
    model: Any, tensors: list[str], batches: Iterable[Feeds], threads: int = 1
) -> dict[str, npt.NDArray[np.float64]]:
    """max |value| of every channel (last axis) of each named tensor, over real tokens."""
    session = probe_session(model, tensors, threads)
    maxima: dict[str, npt.NDArray[np.float64]] = {}
    for feeds in batches:
        outputs = session.run(tensors, dict(feeds))
        for name, activation in zip(tensors, outputs, strict=True):
            rows = np.abs(token_rows(activation, feeds["attention_mask"]))
            if rows.shape[0] == 0:
                continue
            batch_max = rows.max(axis=0).astype(np.float64)
            maxima[name] = np.maximum(maxima[name], batch_max) if name in maxima else batch_max
    missing = [name for name in tensors if name not in maxima]
    if missing:
        raise ValueError(f"calibration saw no token for {len(missing)} tensors: give it data")
    return maxima


def smoothing_factors(
    activation_max: npt.NDArray[np.float64], weights: list[npt.NDArray[np.float32]], alpha: float
) -> npt.NDArray[np.float32]:
    """``s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)``, ``W_j`` row j of every weight that
    reads the activation; 1 where a channel or a row is all zeros."""
    weight_max = np.max([np.abs(w).max(axis=1) for w in weights], axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = activation_max**alpha / weight_max ** (1 - alpha)
    usable = np.isfinite(factors) & (factors > 0) & (activation_max > 0) & (weight_max > 0)
    return np.where(usable, np.clip(factors, *_FACTOR_BOUNDS), 1.0).astype(np.float32)


def smooth(model: Any, maxima: Mapping[str, npt.NDArray[np.float64]], alpha: float) -> int:
    """Rewrite the fp32 ``model`` in place: each activation in ``maxima`` is divided by its
    factors (one ``Mul``) and the weights reading it multiplied by them. Returns how many
    activations were smoothed."""
    from onnx import helper, numpy_helper

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"SmoothQuant alpha must be between 0 and 1, got {alpha}")
    graph = model.graph
    initialisers = {i.name: i for i in graph.initializer}
    inserted: dict[int, Any] = {}  # node index -> the Mul to insert before it
    new_weights = []
    readers = smoothed_inputs(model)
    for activation, indices in readers.items():
        if activation not in maxima:
            continue
        nodes = [graph.node[i] for i in indices]
        weights = [numpy_helper.to_array(initialisers[n.input[1]]) for n in nodes]
        factors = smoothing_factors(maxima[activation], weights, alpha)
        inverse = f"{activation}_smooth_inverse"
        smoothed = f"{activation}_smoothed"
        new_weights.append(numpy_helper.from_array((1.0 / factors).astype(np.float32), inverse))
        inserted[min(indices)] = helper.make_node(
            "Mul", [activation, inverse], [smoothed], name=f"{activation}_smooth"
        )
        for node, weight in zip(nodes, weights, strict=True):
            # A name of its own per MatMul: a weight shared with another reader keeps its values.
            name = f"{node.name or node.output[0]}_{node.input[1]}_smoothed"
            scaled = (weight * factors.reshape(-1, 1)).astype(np.float32)
            new_weights.append(numpy_helper.from_array(scaled, name))
            node.input[0], node.input[1] = smoothed, name
    nodes = []
    for index, node in enumerate(graph.node):
        if index in inserted:
            nodes.append(inserted[index])
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_weights)
    return len(inserted)


def smooth_file(
    fp32_path: Path,
    out_path: Path,
    batches: Iterable[Feeds],
    alpha: float,
    *,
    threads: int = 1,
    calibration: str = "",
) -> dict[str, Any]:
    """Calibrate ``fp32_path`` on ``batches``, write the smoothed fp32 graph to ``out_path``;
    returns what metadata.json records about it."""
    import onnx

    model = onnx.load(str(fp32_path))
    tensors = sorted(smoothed_inputs(model))
    if not tensors:
        raise ValueError(f"{fp32_path} has no MatMul with a weight input to smooth")
    maxima = channel_maxima(model, tensors, batches, threads)
    count = smooth(model, maxima, alpha)
    onnx.save(model, str(out_path))
    peak = {name: float(m.max() / max(float(np.median(m)), 1e-12)) for name, m in maxima.items()}
    log.info("SmoothQuant applied", alpha=alpha, activations=count)
    return {
        "alpha": alpha,
        "smoothed_activations": count,
        "calibration": calibration,
        "largest_channel_to_median_before": round(max(peak.values()), 1),
    }
