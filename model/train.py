"""Fine-tune an encoder checkpoint for sentiment on TweetEval-format data (PyTorch, CPU).

A plain training loop rather than transformers' Trainer: it needs no accelerate, keeps the
CPU thread count under control, and batches tweets of similar length together so little
compute goes into padding.

Two options make the most of a small CPU and little labelled data:

- ``freeze_layers``: the bottom layers stay frozen and their output is computed once
  (model/frozen.py), so a base-size encoder trains in a fraction of the time;
- ``teachers``: knowledge distillation. The averaged probabilities of one or more trained model
  folders (ONNX, scored by :class:`model.scorer.Scorer`) become soft targets for every training
  tweet and for extra unlabelled tweets (``unlabelled``); the loss mixes them with the gold
  labels. A small student learns the teachers' finer judgement, the way DistilBERT did.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import structlog

from model.data import DataError, LabelledTweet, read_label_names, read_splits
from model.export import ModelExportError, checkpoint_unavailable_message
from model.metadata import Preprocessing, utc_now
from model.preprocess import normaliser
from model.progress import progress_bar

log = structlog.get_logger(__name__)

ClassWeighting = Literal["balanced", "none"]
# Shuffled tweets are cut into pools of this many batches; each pool is sorted by length, so
# batches hold tweets of similar length while the order of batches stays random.
_POOL_BATCHES = 50
_LOG_EVERY = 50  # batches


@dataclass(frozen=True)
class TrainingConfig:
    base: str
    data_dir: Path
    train_splits: tuple[str, ...] = ("train",)
    epochs: int = 3
    learning_rate: float = 5e-5
    max_length: int = 128
    batch_size: int = 32
    seed: int = 42
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    # "balanced" weighs each class's loss by 1 / its frequency: TweetEval's metric is macro
    # recall, so a rare class counts as much as a common one.
    class_weighting: ClassWeighting = "balanced"
    preprocessing: Preprocessing = "cardiffnlp"
    threads: int = 2
    # Embeddings and this many bottom encoder layers stay frozen (their output is cached).
    freeze_layers: int = 0
    # Folder where the frozen layers' output is kept between runs (other seeds, other options).
    frozen_cache: str | None = None
    # Model folders whose averaged probabilities are soft targets (knowledge distillation).
    teachers: tuple[str, ...] = ()
    # Files or folders of unlabelled tweets (one per line) the teachers label softly.
    unlabelled: tuple[str, ...] = ()
    # Loss = (1 - w) * cross-entropy on gold labels + w * T^2 * cross-entropy on the teachers'
    # probabilities softened by the temperature T (Hinton et al., 2015).
    distill_weight: float = 0.5
    distill_temperature: float = 2.0
    # Folder where the teachers' probabilities are kept between runs (model/distill.py).
    teacher_cache: str | None = None


def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> Iterator[list[int]]:
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * _POOL_BATCHES
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lengths.__getitem__)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    yield from batches


def _class_weights(tweets: Sequence[LabelledTweet], n_labels: int) -> list[float]:
    counts = [sum(t.label_id == i for t in tweets) for i in range(n_labels)]
    return [len(tweets) / (n_labels * max(c, 1)) for c in counts]


@dataclass(frozen=True)
class _Examples:
    """What one training run learns from: texts, gold labels and the teachers' soft targets."""

    texts: list[str]  # as the tokenizer sees them (normalised)
    labels: Any  # torch.LongTensor (n,), -100 for unlabelled texts
    soft: Any  # torch.FloatTensor (n, labels) softened by the temperature, or None
    n_labelled: int


def _examples(
    config: TrainingConfig, tweets: Sequence[LabelledTweet], labels: tuple[str, ...]
) -> _Examples:
    import torch

    from model.distill import read_unlabelled, teacher_probabilities

    if config.unlabelled and not config.teachers:
        raise DataError("unlabelled tweets need a teacher to label them")
    extra = read_unlabelled([Path(p) for p in config.unlabelled])
    raw = [t.text for t in tweets] + extra
    normalise = normaliser(config.preprocessing)
    gold = torch.tensor([t.label_id for t in tweets] + [-100] * len(extra))
    soft = None
    if config.teachers:
        probabilities = torch.from_numpy(
            teacher_probabilities(
                [Path(t) for t in config.teachers],
                raw,
                labels,
                Path(config.teacher_cache) if config.teacher_cache else None,
            )
        )
        soft = torch.softmax(probabilities.clamp_min(1e-8).log() / config.distill_temperature, 1)
    texts = [normalise(text) for text in raw] if normalise else raw
    return _Examples(texts, gold, soft, len(tweets))


def fine_tune(config: TrainingConfig, checkpoint_out: Path) -> dict[str, Any]:
    """Train, save a Hugging Face checkpoint to ``checkpoint_out``; returns the provenance."""
    import torch
    import transformers
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )

    from model.frozen import FrozenBottom, pad

    torch.set_num_threads(config.threads)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    labels = read_label_names(config.data_dir)
    tweets = read_splits(config.data_dir, list(config.train_splits))
    try:
        tokenizer = AutoTokenizer.from_pretrained(config.base)
        model = AutoModelForSequenceClassification.from_pretrained(
            config.base,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            ignore_mismatched_sizes=True,  # the base's own head, if any, is replaced
        )
    except OSError as error:
        raise ModelExportError(checkpoint_unavailable_message(config.base, error)) from error
    examples = _examples(config, tweets, labels)
    input_ids: list[list[int]] = tokenizer(
        examples.texts, truncation=True, max_length=config.max_length
    )["input_ids"]
    weights = (
        _class_weights(tweets, len(labels))
        if config.class_weighting == "balanced"
        else [1.0] * len(labels)
    )
    hard_loss = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights))
    frozen = FrozenBottom(model, config.freeze_layers) if config.freeze_layers else None
    started = time.monotonic()
    if frozen is not None:
        cache = Path(config.frozen_cache) if config.frozen_cache else None
        key = frozen.cache_key(config.base, input_ids)
        frozen.compute(input_ids, tokenizer.pad_token_id, cache / f"{key}.pt" if cache else None)

    def loss_of(logits: Any, rows: list[int]) -> Any:
        gold = examples.labels[rows]
        labelled = gold >= 0
        loss = hard_loss(logits[labelled], gold[labelled]) if labelled.any() else 0.0
        if examples.soft is None:
            return loss
        temperature = config.distill_temperature
        soft_loss = -(examples.soft[rows] * (logits / temperature).log_softmax(1)).sum(1).mean()
        weight = config.distill_weight
        return (1 - weight) * loss + weight * temperature**2 * soft_loss

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {
            "params": [p for n, p in trainable if not n.endswith(no_decay)],
            "weight_decay": config.weight_decay,
        },
        {"params": [p for n, p in trainable if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
    steps = config.epochs * math.ceil(len(input_ids) / config.batch_size)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(steps * config.warmup_ratio), steps)
    lengths = [len(ids) for ids in input_ids]
    rng = random.Random(config.seed)  # noqa: S311  # shuffling, not secrets
    epoch_losses: list[float] = []
    model.train()
    with frozen.top_only() if frozen else nullcontext(), progress_bar() as bar:
        task = bar.add_task("training", total=steps, status="")
        for epoch in range(1, config.epochs + 1):
            total, count = 0.0, 0
            for rows in _batches(lengths, config.batch_size, rng):
                if frozen is not None:
                    frozen.select(rows)
                ids, mask = pad([input_ids[i] for i in rows], tokenizer.pad_token_id)
                loss = loss_of(model(input_ids=ids, attention_mask=mask).logits, rows)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for _n, p in trainable], 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                total, count = total + loss.item() * len(rows), count + len(rows)
                bar.update(task, advance=1, status=f"epoch {epoch} loss {total / count:.4f}")
                if count // config.batch_size % _LOG_EVERY == 0:  # for logs of unattended runs
                    log.info("training", epoch=epoch, examples=count, loss=round(total / count, 4))
            epoch_losses.append(round(total / count, 4))
            log.info("epoch done", epoch=epoch, loss=epoch_losses[-1])
    model.eval()
    checkpoint_out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(checkpoint_out)
    tokenizer.save_pretrained(checkpoint_out)
    settings = asdict(config)
    settings.update(
        data_dir=str(config.data_dir),
        train_splits=list(config.train_splits),
        teachers=list(config.teachers),
        unlabelled=list(config.unlabelled),
    )
    return {
        **settings,
        "train_examples": len(tweets),
        "unlabelled_examples": len(input_ids) - examples.n_labelled,
        "train_label_counts": {
            label: sum(t.label_id == i for t in tweets) for i, label in enumerate(labels)
        },
        "class_weights": [round(w, 4) for w in weights],
        "epoch_losses": epoch_losses,
        "train_seconds": round(time.monotonic() - started, 1),
        "trained_at": utc_now().isoformat(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
