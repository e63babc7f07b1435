"""Fast batched scoring of texts with an exported model folder; no torch at scoring time.

One :class:`Scorer` is shared by the consumer pipeline and the HTTP API, so ``score`` is safe to
call from several threads at once: the tokenizer and the ONNX Runtime session are only read, and
both release the GIL while they work.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import structlog
from tokenizers import Tokenizer

from model.metadata import TOKENIZER_FILE, MetadataError, ModelMetadata, file_sha256
from model.preprocess import normaliser

log = structlog.get_logger(__name__)

_MODEL_INPUTS = frozenset({"input_ids", "attention_mask", "token_type_ids"})
# Where the model runs: "auto" takes CUDA when ONNX Runtime has it (onnxruntime-gpu), else CPU.
Device = Literal["auto", "cpu", "cuda"]
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"
# Padded tokens per session.run on a CPU (texts x the longest): a micro-batch of a few dozen
# posts is then cut into runs of similar length instead of one run padded to its longest post.
# Measured on 2 cores (benchmarks/pipeline_bench.py --sweep, docs/pipeline.md): micro-batches
# of 32 and 64 posts ran 1.25-1.6x faster per CPU-second than with runs of 32 texts, and 1,024
# posts 7-10% faster. A GPU wants large runs: no budget there.
CPU_RUN_TOKENS = 512
# How a CPU's cores share a batch. "runs": each core scores an equal share of it in runs of
# its own, one ONNX Runtime thread each; "ops": one run at a time, every core on each operator
# (ONNX Runtime's intra-op threads). The runs are small on a consumer that keeps up with its
# traffic (tens of posts), and an operator on a few rows is too little work to split across
# cores: measured on 2 cores (pipeline_bench --sweep, docs/pipeline.md), "runs" scored
# micro-batches of 16-1,024 posts 1.07-1.17x as fast as "ops" by wall-clock.
Parallelism = Literal["runs", "ops"]
# The fewest posts a core's share of a batch holds: a run of 1-3 short posts costs about as
# much as one of 4, so a smaller batch goes to fewer cores.
MIN_SHARE = 4


class ModelLoadError(RuntimeError):
    """The model folder is missing, incomplete or corrupt (the message says which and why)."""


class EmptyTextError(ValueError):
    """A text to score is empty or whitespace-only; such texts are never scored."""


@dataclass(frozen=True)
class Prediction:
    label: str
    probabilities: dict[str, float]  # every label, in metadata order; sums to 1


@dataclass(frozen=True)
class ScoreBatch:
    probabilities: npt.NDArray[np.float32]  # (n, len(labels)), rows sum to 1, input order
    label_ids: npt.NDArray[np.int64]  # (n,), argmax of each row

    def labels(self, names: Sequence[str]) -> list[str]:
        return [names[i] for i in self.label_ids.tolist()]


# Feeds for one session.run and the input positions of its rows.
Batch = tuple[npt.NDArray[np.intp], dict[str, npt.NDArray[np.int64]]]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def softmax(logits: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """Row-wise softmax in float64 (int8 logits can be large), returned as float32."""
    shifted = logits.astype(np.float64)
    shifted -= shifted.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted.astype(np.float32)


class Scorer:
    """A loaded model folder: ``Scorer.load(dir).score(texts)``."""

    def __init__(
        self,
        metadata: ModelMetadata,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        batch_size: int = 32,
        *,
        folder: Path | None = None,
        name: str | None = None,
        max_tokens: int | None = None,
        workers: int = 1,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        self.metadata = metadata
        self.labels: tuple[str, ...] = metadata.labels
        self.version = metadata.version
        self.session = session
        self.batch_size = batch_size
        self.max_tokens = max_tokens  # padded tokens per session.run (None: no budget)
        self.folder = folder  # where it was loaded from
        self.name = name  # its catalogue name (model/catalogue.py), if it has one
        # Runs scored at once, each on a thread of the executor ("runs" parallelism); 1: each
        # run in the caller's thread, in turn.
        self.workers = workers
        if workers > 1 and executor is None:
            executor = ThreadPoolExecutor(workers, thread_name_prefix="onnx-run")
        self._executor = executor if workers > 1 else None
        self._tokenizer = tokenizer
        self._normalise = normaliser(metadata.preprocessing)
        self._input_names = frozenset(i.name for i in session.get_inputs())
        self._output_name: str = session.get_outputs()[0].name

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        threads: int | None = None,
        batch_size: int = 32,
        name: str | None = None,
        device: Device = "cpu",
        max_tokens: int | None = None,
        spin: bool = False,
        parallelism: Parallelism = "runs",
    ) -> Scorer:
        """Load a folder written by ``model export`` or ``model train``; ModelLoadError if bad.

        ``name``: the catalogue name the folder was chosen by, shown by ``/model``;
        ``device``: see :func:`execution_providers`; ``batch_size`` and ``max_tokens``: see
        :meth:`batches` (``max_tokens`` None: ``CPU_RUN_TOKENS`` on the CPU, none on a GPU;
        ``resized`` gives a scorer with no budget); ``spin``: ONNX Runtime's threads spin
        between runs instead of sleeping (see ``_load_session``); ``parallelism``: how
        ``threads`` cores share a batch on the CPU (see ``Parallelism``; a GPU takes one run at
        a time).
        """
        folder = Path(model_dir)
        if not folder.is_dir():
            raise ModelLoadError(
                f"model folder {folder} does not exist: pass a folder written by "
                "`sentiment-stream model export` or `model train` (--model / SENTIMENT_MODEL)"
            )
        try:
            metadata = ModelMetadata.read(folder)
        except MetadataError as error:
            raise ModelLoadError(f"{error}; export the model again") from None
        onnx_path = folder / metadata.onnx_file
        if not onnx_path.is_file():
            raise ModelLoadError(f"{onnx_path} is missing (metadata.json names it)")
        actual_sha = file_sha256(onnx_path)
        if actual_sha != metadata.onnx_sha256:
            raise ModelLoadError(
                f"{onnx_path} has sha256 {actual_sha[:12]}..., metadata.json says "
                f"{metadata.onnx_sha256[:12]}...: the file was changed or corrupted; "
                "export it again"
            )
        tokenizer = load_tokenizer(folder / TOKENIZER_FILE, metadata.max_length)
        cores = threads or available_cores()
        on_cpu = execution_providers(device)[0] == _CPU
        workers = cores if on_cpu and parallelism == "runs" else 1
        session = _load_session(onnx_path, cores // workers, device, spin=spin)
        _check_signature(session, metadata, onnx_path)
        if max_tokens is None and on_cpu:
            max_tokens = CPU_RUN_TOKENS
        log.info(
            "model loaded",
            model_dir=str(folder),
            version=metadata.version,
            quantization=metadata.quantization,
            threads=cores,
            parallel_runs=workers,
            providers=session.get_providers(),
            run_tokens=max_tokens,
        )
        return cls(
            metadata,
            session,
            tokenizer,
            batch_size,
            folder=folder,
            name=name,
            max_tokens=max_tokens,
            workers=workers,
        )

    def resized(self, batch_size: int, max_tokens: int | None = None) -> Scorer:
        """The same loaded model (session, tokenizer and run threads shared) with other
        sub-batch bounds."""
        return Scorer(
            self.metadata,
            self.session,
            self._tokenizer,
            batch_size,
            folder=self.folder,
            name=self.name,
            max_tokens=max_tokens,
            workers=self.workers,
            executor=self._executor,
        )

    def score(self, texts: Sequence[str]) -> ScoreBatch:
        """Probabilities for every text, in input order; EmptyTextError names an empty one."""
        probabilities = np.empty((len(texts), len(self.labels)), dtype=np.float32)

        def score_share(runs: list[Batch]) -> None:
            for rows, feeds in runs:
                (logits,) = self.session.run([self._output_name], feeds)
                probabilities[rows] = softmax(logits)  # runs hold disjoint rows

        shares = self.shares(texts)
        if self._executor is None or len(shares) == 1:
            for runs in shares:
                score_share(runs)
        else:
            # A session may run from several threads at once; list() re-raises a share's error.
            list(self._executor.map(score_share, shares))
        return ScoreBatch(probabilities, probabilities.argmax(axis=1).astype(np.int64))

    def predict(self, text: str) -> Prediction:
        row = self.score([text]).probabilities[0]
        return Prediction(
            label=self.labels[int(row.argmax())],
            probabilities=dict(zip(self.labels, row.tolist(), strict=True)),
        )

    def prepare(self, text: str) -> str:
        """The text as the tokenizer sees it: the checkpoint's normalisation applied."""
        return self._normalise(text) if self._normalise else text

    def batches(self, texts: Sequence[str]) -> Iterator[Batch]:
        """Tokenised, length-sorted, padded batches: the feeds ``score`` runs the session on,
        every worker's share (:meth:`shares`) in turn."""
        for runs in self.shares(texts):
            yield from runs

    def shares(self, texts: Sequence[str]) -> list[list[Batch]]:
        """The runs each worker scores, one list a worker (one list with a single worker).

        Sorting by length keeps padding (wasted work) small; the row indices restore input order.
        The texts are sorted once, however many they are (a consumer's micro-batch of a thousand
        posts has little padding), cut into one share a worker with about the same tokens each
        (fewer shares where one would hold under ``MIN_SHARE`` texts), and each share
        into runs of ``batch_size`` texts, shorter where ``max_tokens`` is set and the run's
        padded tokens (texts x longest) would exceed it. Equal shares keep every core busy
        until the batch is done: runs handed out one by one leave a core idle while the other
        scores the last run, a large part of a micro-batch of a few runs.
        """
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {index} is {type(text).__name__}, not str")
            if not text.strip():
                raise EmptyTextError(f"text {index} is empty or whitespace-only")
        if not texts:
            return []
        prepared = list(map(self._normalise, texts)) if self._normalise else texts
        ids = [encoding.ids for encoding in self._tokenizer.encode_batch_fast(prepared)]
        lengths = np.fromiter(map(len, ids), dtype=np.intp, count=len(ids))
        order = np.argsort(lengths, kind="stable")
        count = max(1, min(self.workers, len(order) // MIN_SHARE))
        tokens_up_to = np.cumsum(lengths[order])
        cuts = np.searchsorted(tokens_up_to, tokens_up_to[-1] * np.arange(1, count) / count)
        bounds = [0, *sorted(set(cuts.tolist()) - {0, len(order)}), len(order)]
        return [
            list(self._runs(ids, lengths, order[start:stop]))
            for start, stop in itertools.pairwise(bounds)
        ]

    def _runs(
        self, ids: list[list[int]], lengths: npt.NDArray[np.intp], order: npt.NDArray[np.intp]
    ) -> Iterator[Batch]:
        start = 0
        while start < len(order):
            stop = min(start + self.batch_size, len(order))
            if self.max_tokens is not None:
                # Sorted ascending: the run's widest text is its last one.
                while (
                    stop - start > 1 and (stop - start) * lengths[order[stop - 1]] > self.max_tokens
                ):
                    stop -= 1
            rows = order[start:stop]
            yield rows, self._feeds([ids[i] for i in rows.tolist()], int(lengths[rows[-1]]))
            start = stop

    def _feeds(self, ids: list[list[int]], width: int) -> dict[str, npt.NDArray[np.int64]]:
        input_ids = np.full((len(ids), width), self.metadata.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, row_ids in enumerate(ids):
            input_ids[row, : len(row_ids)] = row_ids
            attention_mask[row, : len(row_ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        return feeds


def load_tokenizer(path: Path, max_length: int) -> Tokenizer:
    """The folder's fast tokenizer as the scorer runs it: truncated, never padded."""
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises plain Exception for unreadable files
        raise ModelLoadError(f"cannot read tokenizer {path}: {error}") from None
    tokenizer.no_padding()  # the scorer pads each batch to its own longest text
    tokenizer.enable_truncation(max_length)
    return tokenizer


def execution_providers(device: Device, available: Sequence[str] | None = None) -> list[Any]:
    """ONNX Runtime providers for ``device``: "cpu"; "cuda" (ModelLoadError where ONNX Runtime
    has no CUDA provider); "auto": CUDA when it has one, else CPU. Nodes CUDA lacks (e.g. the
    int8 MatMuls) run on the CPU provider listed after it."""
    available = ort.get_available_providers() if available is None else available
    if device == "cpu":
        return [_CPU]
    if _CUDA in available:
        return [(_CUDA, {"cudnn_conv_algo_search": "DEFAULT"}), _CPU]
    if device == "cuda":
        raise ModelLoadError(
            "SENTIMENT_MODEL_DEVICE=cuda but this ONNX Runtime has no CUDA provider "
            f"(it has {', '.join(available)}): install onnxruntime-gpu, or use auto / cpu"
        )
    return [_CPU]


def _load_session(
    path: Path, threads: int, device: Device = "cpu", *, spin: bool = False
) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # ONNX Runtime's threads spin-wait for work by default. In a consumer they share the cores
    # with the poller, the writer, often the broker and PostgreSQL: spinning takes CPU from
    # them, and a starved spinning thread stalls its partners. Measured on a loaded 2-core
    # machine (benchmarks/pipeline_bench.py, docs/pipeline.md): a batch of 9 tweets took a
    # p50 of 27 ms without spinning against 120-190 ms with it, and 1,024 tweets ran at 420-430
    # tweets per CPU-second against 243-259.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # GPU kernels may pick non-deterministic algorithms (atomics); a post's score must not vary.
    options.use_deterministic_compute = True
    providers = execution_providers(device)
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:  # onnxruntime raises its own untyped Fail/InvalidProtobuf
        raise ModelLoadError(f"ONNX Runtime cannot load {path}: {error}") from None


def _check_signature(session: ort.InferenceSession, metadata: ModelMetadata, path: Path) -> None:
    inputs = {i.name for i in session.get_inputs()}
    if not {"input_ids", "attention_mask"} <= inputs <= _MODEL_INPUTS:
        raise ModelLoadError(f"{path} takes inputs {sorted(inputs)}, not a text classifier's")
    width = session.get_outputs()[0].shape[-1]
    if isinstance(width, int) and width != len(metadata.labels):
        raise ModelLoadError(
            f"{path} outputs {width} scores but metadata.json names "
            f"{len(metadata.labels)} labels {list(metadata.labels)}"
        )
