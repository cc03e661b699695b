"""Training: losses, the trainer (checkpoints, exact resume, DDP) and YAML recipes."""

from .losses import box_losses, ciou_loss, cxcywh_to_xyxy, giou_loss, l1_loss, score_loss, xywh_to_xyxy
from .recipes import Recipe, available_recipes, load_recipe
from .trainer import TrainConfig, Trainer, TrainingError, TrainResult, train_from_recipe

__all__ = [
    "Recipe",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingError",
    "available_recipes",
    "box_losses",
    "ciou_loss",
    "cxcywh_to_xyxy",
    "giou_loss",
    "l1_loss",
    "load_recipe",
    "score_loss",
    "train_from_recipe",
    "xywh_to_xyxy",
]
