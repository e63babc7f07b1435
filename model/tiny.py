"""A tiny RoBERTa-shaped sentiment model, built offline in seconds, for tests and CI.

Its tokenizer is a byte-level BPE trained on the shared tweets and its weights are random (with
a wide initialisation, so that scores differ between texts); it goes through the same export code
as real checkpoints, so tests exercise the real ONNX path.
"""

from __future__ import annotations

from pathlib import Path

from model.data import read_label_names, read_split
from model.export import export_model

MAX_LENGTH = 128
_SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids 0..4
_TOKEN_ROLES = {
    "bos_token": "<s>",
    "cls_token": "<s>",
    "pad_token": "<pad>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}


def _train_tokenizer(texts: list[str], out_dir: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import RobertaTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=_TOKEN_ROLES["unk_token"]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    RobertaTokenizerFast(
        tokenizer_object=tokenizer, model_max_length=MAX_LENGTH, **_TOKEN_ROLES
    ).save_pretrained(out_dir)


def _save_random_roberta(labels: tuple[str, ...], vocab_size: int, out_dir: Path) -> None:
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=MAX_LENGTH + 2,  # RoBERTa positions start after the pad id
        initializer_range=0.3,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    RobertaForSequenceClassification(config).eval().save_pretrained(out_dir)


def build_tiny_model(out_dir: Path, tweeteval_dir: Path) -> Path:
    """Build the checkpoint in ``out_dir/checkpoint``; export it (int8-static) to
    ``out_dir/model``."""
    from tokenizers import Tokenizer

    checkpoint = out_dir / "checkpoint"
    _train_tokenizer([t.text for t in read_split(tweeteval_dir, "val")], checkpoint)
    vocab_size = Tokenizer.from_file(str(checkpoint / "tokenizer.json")).get_vocab_size()
    _save_random_roberta(read_label_names(tweeteval_dir), vocab_size, checkpoint)
    model_dir = out_dir / "model"
    export_model(
        str(checkpoint),
        model_dir,
        quantization="int8-static",
        max_length=MAX_LENGTH,
        preprocessing="cardiffnlp",
        training={"note": "random weights: a test fixture, not a sentiment model"},
    )
    return model_dir


def trainable_checkpoint(tiny_checkpoint: Path, out_dir: Path) -> Path:
    """The tiny checkpoint's architecture and tokenizer with the usual narrow initialisation
    (0.02): the wide one above makes scores differ but hardly trains, while this one learns a
    simple task in a few epochs (the retrain tests and the retrain loop's tiny run)."""
    import shutil

    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    shutil.copytree(tiny_checkpoint, out_dir, dirs_exist_ok=True)
    config = RobertaConfig.from_pretrained(out_dir)
    config.initializer_range = 0.02
    torch.manual_seed(0)
    RobertaForSequenceClassification(config).eval().save_pretrained(out_dir)
    return out_dir
