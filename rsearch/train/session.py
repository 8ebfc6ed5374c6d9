"""Everything one run trains with, built from a recipe, saved to and restored from checkpoints."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm.data
import torch
from timm.scheduler.scheduler import Scheduler
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from rsearch.spec.recipe import Recipe
from rsearch.train.augment import EvalTransform, Normalize, TrainTransform, build_randaugment
from rsearch.train.checkpoint import (
    FORMAT,
    capture_rng,
    checkpoint_file,
    load_file,
    restore_rng,
    save_atomically,
)
from rsearch.train.compute import ComputeCosts, count_costs
from rsearch.train.data import DataBundle, build_data, per_rank_batch
from rsearch.train.distributed import DistContext, broadcast_object, gather_objects
from rsearch.train.errors import TrainInputError
from rsearch.train.measure import cost
from rsearch.train.model import build_model
from rsearch.train.optim import (
    base_optimizer,
    build_ema,
    build_mixup,
    build_optimizer,
    build_scheduler,
    build_train_loss,
)
from rsearch.train.runtime import (
    autocast_dtype,
    check_cpu_bf16,
    configure_threads,
    device_name,
    make_device,
    seed_everything,
)
from rsearch.train.sources import count_classes
from rsearch.train.step import TrainStep

CHECKPOINT_VERSION = 1

Metrics = dict[str, float | str]
"""An epoch's metrics by name (rsearch.spec.metrics): numbers, and the few text values the
table marks `text` (device_kind)."""

_SCHEDULE_FIELDS = ("schedule", "epochs")
"""Recipe sections that shape the LR schedule: a saved schedule is reused only if they match."""


@dataclass
class Session:
    """A run's model, data, optimisation state and history."""

    recipe: Recipe
    ctx: DistContext
    device: torch.device
    dtype: torch.dtype | None
    model: nn.Module
    data: DataBundle
    train_transform: TrainTransform
    eval_transform: EvalTransform
    step: TrainStep
    scheduler: Scheduler
    cost: dict[str, float]
    costs: ComputeCosts
    """Per-image FLOPs at every resolution of the run, counted once when it was built."""
    device_kind: str
    """'cpu' or rank 0's CUDA device name (the same on every rank)."""
    history: list[Metrics] = field(default_factory=list)
    start_epoch: int = 0
    """Epochs already trained (non-zero after a resume)."""

    @property
    def eval_size(self) -> int:
        """The evaluation resolution."""
        return self.recipe.data.eval_image_size or self.recipe.data.image_size


def check_recipe(recipe: Recipe, ctx: DistContext, dtype: torch.dtype | None) -> None:
    """Refuse combinations that cannot train, before any data is read.

    Raises:
        TrainInputError: SAM with fp16, or mixup/CutMix with an odd per-worker batch.
    """
    if recipe.optim.name == "sam" and dtype is torch.float16:
        raise TrainInputError("optim 'sam' does not support fp16 loss scaling; use bf16 or fp32")
    mixing = recipe.augment.mixup > 0 or recipe.augment.cutmix > 0
    if mixing and per_rank_batch(recipe.data, ctx) % 2:
        raise TrainInputError(
            "mixup/CutMix pair each batch with its reverse and need an even per-worker batch; "
            f"data.batch_size {recipe.data.batch_size} over {ctx.world_size} worker(s) is odd"
        )


def build_session(
    recipe: Recipe, ctx: DistContext, device_kind: str, threads: int | None = None
) -> Session:
    """Build a run's components on this rank's device.

    Seeds: the model is initialised from recipe.seed (identical on every rank); augmentation
    then draws from recipe.seed offset by the rank, so ranks augment differently.

    Args:
        recipe: what to train.
        ctx: this process's place among the training processes.
        device_kind: 'cpu' or 'cuda'.
        threads: CPU threads for torch and data decoding (None: see runtime.cpu_threads).
    """
    device = make_device(device_kind, ctx.local_rank)
    configure_threads(device, threads)
    dtype = autocast_dtype(recipe.precision, device)
    check_recipe(recipe, ctx, dtype)
    seed_everything(recipe.seed)
    model = build_model(recipe, count_classes(recipe.data)).to(device)
    if dtype is torch.bfloat16 and device.type == "cpu":
        check_cpu_bf16(model, recipe.data.image_size)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    eval_size = recipe.data.eval_image_size or recipe.data.image_size
    model_cost = cost(model, eval_size)
    costs = count_costs(model, recipe, [recipe.data.image_size], [eval_size])
    data_cfg = timm.data.resolve_model_data_config(model)
    data = build_data(recipe, ctx, device, data_cfg["interpolation"], data_cfg["mean"], threads)
    seed_everything(recipe.seed + 10_007 * (ctx.rank + 1))
    train_tf, eval_tf = _transforms(recipe, data, data_cfg, device)
    step = _train_step(recipe, ctx, model, train_tf, device, dtype)
    scheduler = build_scheduler(base_optimizer(step.optimizer), recipe)
    kind = broadcast_object(device_name(device), ctx)
    return Session(
        recipe,
        ctx,
        device,
        dtype,
        model,
        data,
        train_tf,
        eval_tf,
        step,
        scheduler,
        model_cost,
        costs,
        kind,
    )


def _transforms(
    recipe: Recipe, data: DataBundle, data_cfg: dict[str, Any], device: torch.device
) -> tuple[TrainTransform, EvalTransform]:
    normalize = Normalize(data_cfg["mean"], data_cfg["std"], device)
    size = recipe.data.image_size
    train = TrainTransform(
        recipe.augment,
        size,
        normalize,
        spatial=data.in_memory,
        mixup=build_mixup(recipe.augment, recipe.loss, data.num_classes),
        channels_last=recipe.channels_last,
        randaugment=build_randaugment(recipe.augment, size, data_cfg["mean"]),
    )
    eval_size = recipe.data.eval_image_size or size
    evaluate = EvalTransform(
        eval_size, recipe.data.crop_pct, normalize, data.in_memory, recipe.channels_last
    )
    return train, evaluate


def _train_step(
    recipe: Recipe,
    ctx: DistContext,
    model: nn.Module,
    train_tf: TrainTransform,
    device: torch.device,
    dtype: torch.dtype | None,
) -> TrainStep:
    ema = build_ema(model, recipe.ema)
    net: nn.Module = model
    if ctx.enabled:
        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if recipe.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    return TrainStep(
        net=net,
        model=model,
        loss_fn=build_train_loss(recipe.loss, mixing=train_tf.mixup is not None),
        optimizer=build_optimizer(model, recipe.optim),
        scaler=torch.amp.GradScaler(device.type, enabled=dtype is torch.float16),
        clip=recipe.optim,
        ema=ema,
        device=device,
        dtype=dtype,
    )


# --- checkpoints ----------------------------------------------------------------------------------


def _rng_state(session: Session) -> dict[str, Any]:
    state = capture_rng()
    order = session.data.order
    state["order"] = order.get_state() if order is not None else None
    return state


def save_checkpoint(session: Session, checkpoint_dir: str | Path | None) -> str | None:
    """Write the session after an epoch (rank 0 only); returns the directory written, or None.

    Every rank must call it: the ranks' generator states are gathered into rank 0's file, so
    a resumed run continues each rank's random stream.
    """
    rng = gather_objects(_rng_state(session), session.ctx)
    if checkpoint_dir is None or not session.ctx.is_main:
        return None
    step = session.step
    state = {
        "format": FORMAT,
        "version": CHECKPOINT_VERSION,
        "epoch": len(session.history),
        "updates": step.updates,
        "model": session.model.state_dict(),
        "optimizer": step.optimizer.state_dict(),
        "scheduler": session.scheduler.state_dict(),
        "ema": step.ema.state_dict() if step.ema is not None else None,
        "scaler": step.scaler.state_dict(),
        "rng": rng,
        "history": session.history,
        "recipe": session.recipe.model_dump(mode="json"),
        "world_size": session.ctx.world_size,
    }
    save_atomically(state, checkpoint_file(checkpoint_dir))
    return str(checkpoint_dir)


def read_checkpoint(checkpoint_dir: str | Path | None, ctx: DistContext) -> dict[str, Any] | None:
    """Rank 0's checkpoint in checkpoint_dir (sent to every rank), or None when there is none."""
    state = None
    if ctx.is_main and checkpoint_dir is not None and checkpoint_file(checkpoint_dir).is_file():
        state = load_file(checkpoint_file(checkpoint_dir))
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise TrainInputError(f"{checkpoint_file(checkpoint_dir)} is not an rsearch checkpoint")
    return broadcast_object(state, ctx)


def restore(session: Session, state: dict[str, Any]) -> None:
    """Continue session from a checkpoint state, exactly where it stopped.

    Hyperparameters (learning rate, weight decay, ...) follow the current recipe, not the saved
    one: Population Based Training restarts trials from another trial's checkpoint with
    changed hyperparameters. With an unchanged recipe the two are the same.

    Raises:
        TrainInputError: the checkpoint's weights do not fit the recipe's model.
    """
    try:
        session.model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise TrainInputError(f"the checkpoint does not fit the recipe's model: {e}") from e
    _restore_optimizer(session, state["optimizer"])
    if _same_sections(state["recipe"], session.recipe, _SCHEDULE_FIELDS):
        session.scheduler.load_state_dict(state["scheduler"])
    _restore_ema(session, state.get("ema"))
    if session.step.scaler.is_enabled() and state["scaler"]:
        session.step.scaler.load_state_dict(state["scaler"])
    session.step.updates = state["updates"]
    session.history = list(state["history"])
    session.start_epoch = state["epoch"]
    _restore_rng(session, state["rng"])


def _restore_optimizer(session: Session, saved: dict[str, Any]) -> None:
    optimizer = base_optimizer(session.step.optimizer)
    current = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, hyper in zip(optimizer.param_groups, current, strict=True):
        group.update(hyper)  # the current recipe's hyperparameters, see restore()


def _restore_ema(session: Session, saved: dict[str, Any] | None) -> None:
    ema = session.step.ema
    if ema is None:
        return
    if saved is None:  # EMA newly switched on: start it from the restored weights
        ema.set(session.model)
    else:
        ema.load_state_dict(saved)


def _restore_rng(session: Session, saved: list[dict[str, Any]]) -> None:
    rank = session.ctx.rank
    if rank >= len(saved):  # more ranks than when it was saved: a fresh, distinct stream
        warnings.warn(
            "resuming on more workers than the checkpoint had; new ranks reseeded", stacklevel=3
        )
        seed_everything(session.recipe.seed + 10_007 * (rank + 1) + session.start_epoch)
        return
    restore_rng(saved[rank])
    if session.data.order is not None and saved[rank].get("order") is not None:
        session.data.order.set_state(saved[rank]["order"])


def _same_sections(saved: dict[str, Any], recipe: Recipe, names: tuple[str, ...]) -> bool:
    current = recipe.model_dump(mode="json")
    same = all(saved.get(name) == current[name] for name in names)
    return same and saved.get("optim", {}).get("lr") == current["optim"]["lr"]
