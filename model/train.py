"""Fine-tune an encoder checkpoint for sentiment on TweetEval-format data (PyTorch, CPU).

A plain training loop rather than transformers' Trainer: it needs no accelerate, keeps the
CPU thread count under control, and batches tweets of similar length together so little
compute goes into padding.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import structlog

from model.data import LabelledTweet, read_label_names, read_splits
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


def fine_tune(config: TrainingConfig, checkpoint_out: Path) -> dict[str, Any]:
    """Train, save a Hugging Face checkpoint to ``checkpoint_out``; returns the provenance."""
    import torch
    import transformers
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )

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
    normalise = normaliser(config.preprocessing)
    texts = [normalise(t.text) if normalise else t.text for t in tweets]
    input_ids: list[list[int]] = tokenizer(texts, truncation=True, max_length=config.max_length)[
        "input_ids"
    ]
    targets = torch.tensor([t.label_id for t in tweets])
    weights = (
        _class_weights(tweets, len(labels))
        if config.class_weighting == "balanced"
        else [1.0] * len(labels)
    )
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights))
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": config.weight_decay,
        },
        {
            "params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
            "weight_decay": 0.0,
        },
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
    steps = config.epochs * math.ceil(len(tweets) / config.batch_size)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(steps * config.warmup_ratio), steps)
    lengths = [len(ids) for ids in input_ids]
    rng = random.Random(config.seed)  # noqa: S311  # shuffling, not secrets
    started = time.monotonic()
    epoch_losses: list[float] = []
    model.train()
    with progress_bar() as bar:
        task = bar.add_task("training", total=steps, status="")
        for epoch in range(1, config.epochs + 1):
            total, count = 0.0, 0
            for rows in _batches(lengths, config.batch_size, rng):
                batch = tokenizer.pad(
                    {"input_ids": [input_ids[i] for i in rows]}, return_tensors="pt"
                )
                logits = model(**batch).logits
                loss = loss_fn(logits, targets[rows])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
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
    settings.update(data_dir=str(config.data_dir), train_splits=list(config.train_splits))
    return {
        **settings,
        "train_examples": len(tweets),
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
