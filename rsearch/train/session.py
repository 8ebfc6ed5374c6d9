"""Everything one run trains with, built from a recipe, saved to and restored from checkpoints."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm.data
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from rsearch.spec.recipe import Recipe
from rsearch.spec.resolutions import eval_sizes, final_eval_size, train_sizes
from rsearch.train.augment import EvalTransform, Normalize, TrainTransform, build_randaugment
from rsearch.train.balance import class_weights
from rsearch.train.bundles import build_data
from rsearch.train.checkpoint import (
    FORMAT,
    capture_rng,
    checkpoint_file,
    load_file,
    restore_rng,
    save_atomically,
)
from rsearch.train.compute import ComputeCosts, count_costs
from rsearch.train.data import DataBundle, per_rank_batch
from rsearch.train.distill import DistillLoss, TeacherEnsemble, build_ensemble
from rsearch.train.distributed import DistContext, broadcast_object, gather_objects
from rsearch.train.errors import TrainInputError
from rsearch.train.eval_splits import EvalSplit, build_eval_splits
from rsearch.train.measure import cost
from rsearch.train.model import build_model
from rsearch.train.multires import EvalSet, StepTransforms, check_multires, eval_sets
from rsearch.train.optim import (
    EpochSchedule,
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
from rsearch.train.stages import EpochFidelity, fidelity_at
from rsearch.train.step import TrainStep

CHECKPOINT_VERSION = 1

Metrics = dict[str, float | str]
"""An epoch's metrics by name (rsearch.spec.metrics): numbers, and the few text values the
table marks `text` (device_kind)."""

_SCHEDULE_FIELDS = ("schedule", "epochs")
"""Recipe sections that shape the LR schedule: a saved schedule is reused only if they match."""


@dataclass(frozen=True)
class Transforms:
    """Makes the train and eval transforms at any resolution (data.progressive changes it)."""

    recipe: Recipe
    normalize: Normalize
    mean: tuple[float, ...]
    """The model's normalisation mean, RandAugment's fill colour."""
    spatial: bool
    """Crop and resize on the device (in-memory data) rather than in loader workers."""
    num_classes: int

    def train(self, size: int) -> TrainTransform:
        """The training transform at a resolution, RandAugment's translations sized for it."""
        aug = self.recipe.augment
        return TrainTransform(
            aug,
            size,
            self.normalize,
            spatial=self.spatial,
            mixup=build_mixup(aug, self.recipe.loss, self.num_classes),
            channels_last=self.recipe.channels_last,
            randaugment=build_randaugment(aug, size, self.mean),
        )

    def eval(self, size: int) -> EvalTransform:
        """The evaluation transform at a resolution."""
        data = self.recipe.data
        return EvalTransform(
            size, data.crop_pct, self.normalize, self.spatial, self.recipe.channels_last
        )


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
    scheduler: EpochSchedule
    cost: dict[str, float]
    costs: ComputeCosts
    """Per-image FLOPs at every resolution of the run, counted once when it was built."""
    device_kind: str
    """'cpu' or rank 0's CUDA device name (the same on every rank)."""
    transforms: Transforms
    fidelity: EpochFidelity
    """What the data and transforms are set up for (see enter_epoch)."""
    step_transforms: StepTransforms
    """Each step's training transform under data.train_resolutions (rsearch.train.multires)."""
    eval_sets: list[EvalSet]
    """The test resolutions of data.eval_resolutions, evaluated every epoch."""
    eval_splits: list[EvalSplit] = field(default_factory=list)
    """The extra evaluation sets of data.eval_splits (rsearch.train.eval_splits)."""
    history: list[Metrics] = field(default_factory=list)
    start_epoch: int = 0
    """Epochs already trained (non-zero after a resume)."""
    images_by_size: dict[int, int] = field(default_factory=dict)
    """This rank's training images of the current epoch at each drawn resolution."""

    @property
    def eval_size(self) -> int:
        """The resolution the finished model is evaluated and measured at."""
        return final_eval_size(self.recipe.data)


def enter_epoch(session: Session, epoch: int) -> EpochFidelity:
    """Set the session up for an epoch's data.progressive stage, re-making what changed.

    The train transform (RandAugment included) follows the training resolution, the
    training batches the share of the data, the eval transform and batches eval_rule's size.
    """
    new, old = fidelity_at(session.recipe, epoch), session.fidelity
    if new.train_size != old.train_size:
        session.train_transform = session.transforms.train(new.train_size)
    if new.eval_size != old.eval_size:
        session.eval_transform = session.transforms.eval(new.eval_size)
    session.data.use(new)
    session.fidelity = new
    return new


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
        for size in train_sizes(recipe.data):
            check_cpu_bf16(model, size)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model_cost = cost(model, final_eval_size(recipe.data))
    costs = count_costs(model, recipe, train_sizes(recipe.data), eval_sizes(recipe.data))
    data_cfg = timm.data.resolve_model_data_config(model)
    data = build_data(recipe, ctx, device, data_cfg["interpolation"], data_cfg["mean"], threads)
    check_multires(recipe, data.in_memory)
    seed_everything(recipe.seed + 10_007 * (ctx.rank + 1))
    transforms = Transforms(
        recipe,
        Normalize(data_cfg["mean"], data_cfg["std"], device),
        data_cfg["mean"],
        spatial=data.in_memory,
        num_classes=data.num_classes,
    )
    first = fidelity_at(recipe, 0)
    train_tf = transforms.train(first.train_size)
    teachers = build_ensemble(recipe, data, device, dtype) if recipe.distill.enabled else None
    weight = class_weights(recipe.loss, lambda: data.maker.train_labels, data.num_classes)
    step = _train_step(recipe, ctx, model, train_tf, device, dtype, teachers, weight)
    return Session(
        recipe=recipe,
        ctx=ctx,
        device=device,
        dtype=dtype,
        model=model,
        data=data,
        train_transform=train_tf,
        eval_transform=transforms.eval(first.eval_size),
        step=step,
        scheduler=build_scheduler(base_optimizer(step.optimizer), recipe),
        cost=model_cost,
        costs=costs,
        device_kind=broadcast_object(device_name(device), ctx),
        transforms=transforms,
        fidelity=first,
        step_transforms=StepTransforms(recipe, transforms.train),
        eval_sets=eval_sets(recipe, data, transforms.eval),
        eval_splits=build_eval_splits(recipe, data, threads),
    )


def _train_step(
    recipe: Recipe,
    ctx: DistContext,
    model: nn.Module,
    train_tf: TrainTransform,
    device: torch.device,
    dtype: torch.dtype | None,
    teachers: TeacherEnsemble | None = None,
    class_weight: torch.Tensor | None = None,
) -> TrainStep:
    ema = build_ema(model, recipe.ema)
    net: nn.Module = model
    if ctx.enabled:
        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if recipe.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    loss_fn = build_train_loss(recipe.loss, train_tf.mixup is not None, class_weight)
    loss_fn = loss_fn.to(device)
    if teachers is not None:
        loss_fn = DistillLoss(recipe.distill, base=loss_fn)
    return TrainStep(
        net=net,
        model=model,
        loss_fn=loss_fn,
        optimizer=build_optimizer(model, recipe.optim),
        scaler=torch.amp.GradScaler(device.type, enabled=dtype is torch.float16),
        clip=recipe.optim,
        ema=ema,
        device=device,
        dtype=dtype,
        distill=teachers,
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
    if _same_schedule(state["recipe"], session.recipe):
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


def _same_schedule(saved: dict[str, Any], recipe: Recipe) -> bool:
    if not _same_sections(saved, recipe, _SCHEDULE_FIELDS):
        return False
    if not recipe.schedule.restart_per_stage:
        return True
    # A restarted schedule is cut at the stages' boundaries: their lengths shape it too.
    stages = saved.get("data", {}).get("progressive", [])
    return [s.get("epochs") for s in stages] == [s.epochs for s in recipe.data.progressive]


def _same_sections(saved: dict[str, Any], recipe: Recipe, names: tuple[str, ...]) -> bool:
    current = recipe.model_dump(mode="json")
    same = all(saved.get(name) == current[name] for name in names)
    return same and saved.get("optim", {}).get("lr") == current["optim"]["lr"]
