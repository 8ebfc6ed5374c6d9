"""The resolutions a data section trains and evaluates at, as pure functions of it.

One rule for the training core (rsearch.train.stages, the data, the transforms, the compute
accounting) and for spec validation (rsearch.spec.input_size), which cannot import train.
"""

from __future__ import annotations

from rsearch.spec.data_section import DataConfig


def eval_size_for(cfg: DataConfig, train_size: int) -> int:
    """The evaluation resolution of an epoch trained at train_size, under data.eval_rule.

    final: data.eval_image_size (or image_size) whatever the stage; fixres: the train
    resolution times data.fixres_ratio (FixRes: test a little larger than the train crops).
    """
    if cfg.eval_rule == "fixres":
        return round(train_size * cfg.fixres_ratio)
    return cfg.eval_image_size or cfg.image_size


def final_eval_size(cfg: DataConfig) -> int:
    """The resolution the finished model is evaluated (and its speed measured) at."""
    return eval_size_for(cfg, cfg.image_size)


def train_sizes(cfg: DataConfig) -> list[int]:
    """Every training resolution of a recipe, smallest first (data.image_size included)."""
    stages = (s.image_size or cfg.image_size for s in cfg.progressive)
    return sorted({cfg.image_size, *stages, *step_resolutions(cfg)})


def eval_sizes(cfg: DataConfig) -> list[int]:
    """Every evaluation resolution of a recipe, smallest first (data.eval_resolutions too)."""
    stages = sorted({cfg.image_size, *(s.image_size or cfg.image_size for s in cfg.progressive)})
    return sorted({*(eval_size_for(cfg, size) for size in stages), *cfg.eval_resolutions})


def step_resolutions(cfg: DataConfig) -> list[int]:
    """The set each training step draws its resolution from, smallest first; empty when every
    step trains at the epoch's resolution (no data.train_resolutions, or multi_resolution off)."""
    return sorted(cfg.train_resolutions) if cfg.multi_resolution else []
