"""Several model folders joined into one: an ONNX graph that averages the members'
probabilities, read through one tokenizer.

The joined folder is an ordinary model folder (the scorer, the consumer, the registry and
``model evaluate`` see nothing special): its graph takes the first member's inputs, runs every
member on them, and outputs ``log(sum_k w_k * softmax(logits_k))``, so the scorer's softmax gives
exactly the weighted mean of the members' probabilities.

Members whose tokenizer splits text the same way but numbers the tokens differently (MPNet's
vocabulary is BERT's shifted by four, with RoBERTa-style ``<s>``/``</s>``) get their ``input_ids``
through a lookup table (one ``Gather``): the first member's id -> the member's id, by token
string, special tokens by role (``cls_token`` -> ``cls_token``...). The table is checked on the
bundled validation tweets and refused unless it gives each member exactly its own ids.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from model.export import TOKENIZER_FILES, ModelExportError
from model.metadata import (
    ONNX_FILE,
    TOKENIZER_FILE,
    ModelMetadata,
    Quantization,
    file_sha256,
    model_version,
    utc_now,
)
from model.preprocess import normaliser

log = structlog.get_logger(__name__)

# Copied from the first member: what the scorer and transformers' AutoTokenizer read. Not its
# config.json: it describes one member's architecture, not the joined graph.
_ROLES = ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token", "bos_token")
_OUTPUT = "logits"
# Weakest guarantee first: a member with batch-dependent scores makes the ensemble's so too.
_FORMAT_ORDER: tuple[Quantization, ...] = ("int8-dynamic", "int8-static", "none")


class EnsembleError(ModelExportError):
    """The folders cannot be joined; the message says why."""


@dataclass(frozen=True)
class Member:
    folder: Path
    weight: float


def _special_ids(folder: Path, vocabulary: dict[str, int]) -> dict[str, int]:
    """Role (``cls_token``...) -> token id, from the folder's special_tokens_map.json."""
    path = folder / "special_tokens_map.json"
    roles: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    ids = {}
    for role, token in roles.items():
        content = token.get("content") if isinstance(token, dict) else token
        if role in _ROLES and isinstance(content, str) and content in vocabulary:
            ids[role] = vocabulary[content]
    return ids


def vocabulary_table(primary: Path, member: Path) -> npt.NDArray[np.int64] | None:
    """The first member's token id -> ``member``'s, or None when both number tokens alike."""
    from tokenizers import Tokenizer

    ours = Tokenizer.from_file(str(primary / TOKENIZER_FILE)).get_vocab(with_added_tokens=True)
    theirs = Tokenizer.from_file(str(member / TOKENIZER_FILE)).get_vocab(with_added_tokens=True)
    if ours == theirs:
        return None
    their_roles = _special_ids(member, theirs)
    if "unk_token" not in their_roles:
        raise EnsembleError(f"{member}'s tokenizer names no unk_token to map unknown tokens to")
    table = np.full(max(ours.values()) + 1, their_roles["unk_token"], dtype=np.int64)
    for token, index in ours.items():
        if token in theirs:
            table[index] = theirs[token]
    for role, index in _special_ids(primary, ours).items():
        if role in their_roles:
            table[index] = their_roles[role]
    return table


def check_vocabulary_table(
    primary: Path, member: Path, table: npt.NDArray[np.int64], texts: Sequence[str]
) -> None:
    """EnsembleError unless ``table`` turns the first member's ids of every text into exactly
    the ids ``member``'s own tokenizer gives it (after each folder's tweet normalisation)."""
    from model.scorer import load_tokenizer

    ids = []
    for folder in (primary, member):
        metadata = ModelMetadata.read(folder)
        tokenizer = load_tokenizer(folder / TOKENIZER_FILE, metadata.max_length)
        normalise = normaliser(metadata.preprocessing)
        prepared = [normalise(t) for t in texts] if normalise else list(texts)
        ids.append([e.ids for e in tokenizer.encode_batch_fast(prepared)])
    wrong = [
        text
        for text, ours, theirs in zip(texts, ids[0], ids[1], strict=True)
        if table[ours].tolist() != theirs
    ]
    if wrong:
        raise EnsembleError(
            f"{member}'s tokenizer splits {len(wrong)} of {len(texts)} tweets unlike {primary}'s "
            f"(first: {wrong[0]!r}): members must share one tokenization (the same pieces, "
            "numbered in any order)"
        )


def _check_members(metadata: Sequence[ModelMetadata], members: Sequence[Member]) -> None:
    first = metadata[0]
    for member, each in zip(members, metadata, strict=True):
        if each.labels != first.labels:
            raise EnsembleError(
                f"{member.folder} predicts {list(each.labels)}, {members[0].folder} "
                f"{list(first.labels)}: members must share labels in the same order"
            )
        if each.preprocessing != first.preprocessing:
            raise EnsembleError(
                f"{member.folder} normalises tweets {each.preprocessing!r}, the first member "
                f"{first.preprocessing!r}: members must read the same text"
            )
        if each.max_length < first.max_length:
            raise EnsembleError(
                f"{member.folder} reads at most {each.max_length} tokens, the first member "
                f"{first.max_length}: put the member with the shortest max length first"
            )
        if member.weight <= 0:
            raise EnsembleError(f"the weight of {member.folder} must be positive")


def join_graphs(
    models: Sequence[Any],
    weights: Sequence[float],
    tables: Sequence[npt.NDArray[np.int64] | None],
    n_labels: int,
) -> Any:
    """One ONNX model that runs ``models`` on the first one's inputs and outputs the log of
    their probabilities averaged with ``weights`` (which sum to 1)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inputs = list(models[0].graph.input)
    names = {i.name for i in inputs}
    nodes: list[Any] = []
    initialisers: list[Any] = []
    value_infos: list[Any] = []
    weighted = []
    for k, (model, weight, table) in enumerate(zip(models, weights, tables, strict=True)):
        prefix = f"member{k}_"
        member = onnx.compose.add_prefix(model, prefix)
        for graph_input in member.graph.input:
            name = graph_input.name.removeprefix(prefix)
            if name == "input_ids" and table is not None:
                vocabulary = f"{prefix}vocabulary"
                initialisers.append(numpy_helper.from_array(table, vocabulary))
                nodes.append(helper.make_node("Gather", [vocabulary, name], [graph_input.name]))
            elif name in names:
                nodes.append(helper.make_node("Identity", [name], [graph_input.name]))
            elif name == "token_type_ids":  # one segment: zeros shaped like the ids
                nodes.append(
                    helper.make_node("Sub", ["input_ids", "input_ids"], [graph_input.name])
                )
            else:
                raise EnsembleError(f"member {k} takes input {name!r}, the first one does not")
        nodes += member.graph.node
        initialisers += member.graph.initializer
        value_infos += member.graph.value_info
        logits = member.graph.output[0].name
        share = f"{prefix}weight"
        initialisers.append(numpy_helper.from_array(np.array(weight, np.float32), share))
        nodes.append(helper.make_node("Softmax", [logits], [f"{prefix}probabilities"], axis=-1))
        nodes.append(
            helper.make_node("Mul", [f"{prefix}probabilities", share], [f"{prefix}weighted"])
        )
        weighted.append(f"{prefix}weighted")
    nodes.append(helper.make_node("Sum", weighted, ["ensemble_probabilities"]))
    nodes.append(helper.make_node("Log", ["ensemble_probabilities"], [_OUTPUT]))
    output = helper.make_tensor_value_info(_OUTPUT, TensorProto.FLOAT, ["batch_size", n_labels])
    graph = helper.make_graph(
        nodes, "ensemble", inputs, [output], initialisers, value_info=value_infos
    )
    opsets: dict[str, int] = {}
    for model in models:
        for opset in model.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    joined = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
        producer_name="sentiment-stream model ensemble",
    )
    joined.ir_version = max(model.ir_version for model in models)
    return joined


def build_ensemble(
    members: Sequence[Member], out_dir: Path, *, name: str, check_texts: Sequence[str]
) -> ModelMetadata:
    """Join ``members`` into the model folder ``out_dir``; the first one's tokenizer reads the
    text. ``check_texts`` prove every vocabulary lookup table exact."""
    import onnx

    if len(members) < 2:
        raise EnsembleError("an ensemble needs at least two members")
    metadata = [ModelMetadata.read(m.folder) for m in members]
    _check_members(metadata, members)
    total = sum(m.weight for m in members)
    weights = [m.weight / total for m in members]
    primary = members[0].folder
    tables = [None] + [vocabulary_table(primary, m.folder) for m in members[1:]]
    for member, table in zip(members[1:], tables[1:], strict=True):
        if table is not None:
            check_vocabulary_table(primary, member.folder, table, check_texts)
    models = [
        onnx.load(str(m.folder / each.onnx_file)) for m, each in zip(members, metadata, strict=True)
    ]
    joined = join_graphs(models, weights, tables, len(metadata[0].labels))
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(joined, str(out_dir / ONNX_FILE))
    for file in TOKENIZER_FILES:  # the tokenizer's, not config.json: no transformers model
        if (primary / file).is_file():
            shutil.copyfile(primary / file, out_dir / file)
    sha = file_sha256(out_dir / ONNX_FILE)
    described = [
        _describe(m, each, weight, table, len(check_texts))
        for m, each, weight, table in zip(members, metadata, weights, tables, strict=True)
    ]
    first = metadata[0]
    result = ModelMetadata(
        source_checkpoint=f"ensemble of {' + '.join(each.version for each in metadata)}",
        labels=first.labels,
        max_length=first.max_length,
        pad_token_id=first.pad_token_id,
        quantization=next(f for f in _FORMAT_ORDER if any(m.quantization == f for m in metadata)),
        opset=max(int(o.version) for o in joined.opset_import if o.domain in ("", "ai.onnx")),
        onnx_sha256=sha,
        created_at=utc_now(),
        version=model_version(name, sha),
        preprocessing=first.preprocessing,
        languages=first.languages,
        ensemble={
            "output": "log of the weighted mean of the members' probabilities",
            "tokenizer": f"{first.version}'s",
            "members": described,
        },
    )
    result.write(out_dir)
    log.info("ensemble written", out=str(out_dir), version=result.version, members=len(members))
    return result


def _describe(
    member: Member,
    metadata: ModelMetadata,
    weight: float,
    table: npt.NDArray[np.int64] | None,
    checked: int,
) -> dict[str, Any]:
    training = metadata.training or {}
    return {
        "version": metadata.version,
        "folder": str(member.folder),
        "weight": round(weight, 6),
        "source_checkpoint": metadata.source_checkpoint,
        "quantization": metadata.quantization,
        "smoothquant": (metadata.quantization_details or {}).get("smoothquant"),
        "macro_recall": (metadata.metrics or {}).get("macro_recall"),
        "evaluated_on": (metadata.metrics or {}).get("splits"),
        "training_command": training.get("command"),
        "vocabulary": "the first member's"
        if table is None
        else f"remapped by a lookup table of {table.size} ids, exact on {checked} tweets",
    }
