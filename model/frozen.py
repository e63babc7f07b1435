"""Training only the top layers of an encoder, with the frozen bottom computed once.

Fine-tuning a base-size encoder (12 layers, hidden 768) on two CPU cores costs hours per run,
most of it in the forward and backward passes of layers that barely move. With the embeddings and
the bottom ``n`` layers frozen, their output for each training text never changes: it is computed
once (one inference pass), kept in memory, and every epoch runs only the top layers on it. The
saved checkpoint is an ordinary, complete model: nothing of this trick reaches the export.

Works with BERT-, RoBERTa- and MPNet-style models (``base_model.embeddings`` feeding
``base_model.encoder.layer``): a forward hook swaps the embeddings' output for the cached states
while the encoder runs only its top layers, so attention masks, MPNet's relative position bias,
the pooler and the classification head are all the model's own code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from model.progress import progress_bar

if TYPE_CHECKING:
    import torch

log = structlog.get_logger(__name__)

_CACHE_BATCH = 64  # texts per inference batch while the frozen states are computed


class FrozenBottom:
    """The cached output of the frozen bottom layers, one (tokens, hidden) tensor per text."""

    def __init__(self, model: Any, n_layers: int) -> None:
        layers = model.base_model.encoder.layer
        if not 0 < n_layers < len(layers):
            raise ValueError(
                f"--freeze-layers must be between 1 and {len(layers) - 1} for this "
                f"{len(layers)}-layer encoder, got {n_layers}"
            )
        self._model = model
        self._n_layers = n_layers
        self._layers = layers
        self._states: list[torch.Tensor] = []
        self._batch: torch.Tensor | None = None
        for name, parameter in model.named_parameters():
            if name.startswith(model.base_model_prefix + "."):
                parameter.requires_grad = self._trains(name)

    def _trains(self, name: str) -> bool:
        """Only the top layers and the pooler of the base model train; the embeddings, the
        bottom layers and anything shared by every layer (MPNet's relative attention bias) stay
        as they are, so the cached states remain exactly what the saved model computes."""
        parts = name.split(".")
        if "pooler" in parts:
            return True
        if "layer" in parts:
            index = parts[parts.index("layer") + 1]
            return index.isdigit() and int(index) >= self._n_layers
        return False

    @contextmanager
    def _encoder_layers(self, start: int, end: int) -> Iterator[None]:
        import torch

        encoder = self._model.base_model.encoder
        encoder.layer = torch.nn.ModuleList(list(self._layers)[start:end])
        try:
            yield
        finally:
            encoder.layer = self._layers

    def compute(
        self, input_ids: Sequence[list[int]], pad_token_id: int, cache_file: Path | None = None
    ) -> None:
        """Run the frozen layers once over every text (in inference mode) and keep the result;
        with ``cache_file``, load it from there when a run before saved it, or save it there."""
        import torch

        if cache_file is not None and cache_file.is_file():
            log.info("frozen layers' output from the cache", file=str(cache_file))
            self._states = torch.load(cache_file)
            return
        order = sorted(range(len(input_ids)), key=lambda i: len(input_ids[i]))
        states: list[torch.Tensor | None] = [None] * len(input_ids)
        was_training = self._model.training
        self._model.eval()
        with (
            self._encoder_layers(0, self._n_layers),
            torch.inference_mode(),
            progress_bar() as bar,
        ):
            task = bar.add_task("frozen layers", total=len(order), status="")
            for start in range(0, len(order), _CACHE_BATCH):
                rows = order[start : start + _CACHE_BATCH]
                ids, mask = pad([input_ids[i] for i in rows], pad_token_id)
                hidden = self._model.base_model(input_ids=ids, attention_mask=mask)[0]
                for row, i in enumerate(rows):
                    states[i] = hidden[row, : len(input_ids[i])].clone()
                bar.advance(task, len(rows))
        self._model.train(was_training)
        self._states = [s for s in states if s is not None]
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            partial = cache_file.with_suffix(".partial")
            torch.save(self._states, partial)
            partial.replace(cache_file)

    def cache_key(self, base: str, input_ids: Sequence[list[int]]) -> str:
        """Names the frozen layers' output for these texts: base, layer count and token ids."""
        digest = hashlib.sha256(json.dumps([base, self._n_layers, input_ids]).encode())
        return digest.hexdigest()[:24]

    @contextmanager
    def top_only(self) -> Iterator[None]:
        """Inside, ``model(input_ids=..., attention_mask=...)`` runs only the top layers on the
        cached states of the texts :meth:`select` last chose."""
        hook = self._model.base_model.embeddings.register_forward_hook(
            lambda _module, _args, _output: self._batch
        )
        try:
            with self._encoder_layers(self._n_layers, len(self._layers)):
                yield
        finally:
            hook.remove()

    def select(self, rows: Sequence[int]) -> None:
        """Make the cached states of ``rows`` (padded with zeros) the next forward's input."""
        import torch

        self._batch = torch.nn.utils.rnn.pad_sequence(
            [self._states[i] for i in rows], batch_first=True
        )


def pad(ids: Sequence[list[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded input ids and attention mask for one batch."""
    import torch

    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, row_ids in enumerate(ids):
        input_ids[row, : len(row_ids)] = torch.tensor(row_ids)
        mask[row, : len(row_ids)] = 1
    return input_ids, mask
