"""fit: train a recipe epoch by epoch, evaluate, checkpoint and report.

The training core knows nothing of its caller: it reports through a callable (as in
syne-tune), so the same fit runs under Ray Train, under torchrun, or alone on a laptop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rsearch.spec.recipe import Recipe
from rsearch.train.augment import EvalTransform
from rsearch.train.classify_metrics import Scores, class_metrics
from rsearch.train.compute import EpochWork, epoch_compute
from rsearch.train.data import Batches
from rsearch.train.distributed import (
    all_reduce,
    average_batchnorm,
    broadcast_object,
    setup_distributed,
    teardown_distributed,
)
from rsearch.train.eval_splits import new_scores, split_metrics
from rsearch.train.multires import resolution_metrics
from rsearch.train.optim import base_optimizer
from rsearch.train.runtime import autocast, deterministic, device_type, synchronize
from rsearch.train.session import (
    Metrics,
    Session,
    build_session,
    enter_epoch,
    read_checkpoint,
    restore,
    save_checkpoint,
)
from rsearch.train.speed import Pauses, measured_speed
from rsearch.train.sums import EvalSums, TrainSums

Reporter = Callable[[Metrics, str | None], None]
"""report(metrics, checkpoint_dir): called once per epoch on every rank with the same metrics;
rank 0 passes the checkpoint directory it just wrote (None without checkpointing), others None."""

StepHook = Callable[[int, int, int], None]
"""on_step(epoch, step, steps_per_epoch), 1-based, after every training step (progress bars)."""


def fit(
    recipe: Recipe,
    report: Reporter | None = None,
    checkpoint_dir: str | Path | None = None,
    *,
    threads: int | None = None,
    speed_cache: str | Path | None = None,
) -> Metrics:
    """Train a recipe and return the final epoch's metrics.

    Args:
        recipe: what to train.
        report: called after every epoch with that epoch's metrics (see Reporter).
        checkpoint_dir: rank 0 writes checkpoint.pt here every epoch; if the file already
            exists when fit starts, training resumes from it.
        threads: CPU threads for torch and data decoding; None uses the CPUs the process
            may run on, split among the ranks started together on its node.
        speed_cache: the run's cache of inference speeds (a JSON file), consulted before
            the user's shared one; None consults the shared one only (rsearch.train.speed).

    Returns:
        The final epoch's metrics, named and described in rsearch.spec.metrics: epoch,
        train_loss, val_loss, val_top1, val_top5, lr, epoch_s, train_images_per_s, params_m,
        gflops, model_mbit, gbops, the compute spent (epoch_train_flops, epoch_eval_flops,
        total_flops, device_s, total_device_s, fidelity), the epoch's train_image_size,
        train_fraction and eval_image_size, device_kind (text), infer_images_per_s,
        infer_latency_ms, infer_latency_ms_batch, infer_spread_pct, infer_latency_spread_pct,
        ema_val_top1/ema_val_loss when EMA is on, and val_top1@N/val_loss@N/val_top1@mean
        with data.eval_resolutions.

    Raises:
        TrainInputError: data, model or recipe values that cannot be trained with, or
            threads below 1.
    """
    return run_training(recipe, report, checkpoint_dir, threads=threads, speed_cache=speed_cache)


def run_training(
    recipe: Recipe,
    report: Reporter | None = None,
    checkpoint_dir: str | Path | None = None,
    on_step: StepHook | None = None,
    threads: int | None = None,
    *,
    speed_cache: str | Path | None = None,
) -> Metrics:
    """fit, with a per-step hook for progress display."""
    kind = device_type(recipe.device)
    ctx = setup_distributed(kind)
    try:
        with deterministic(recipe.deterministic):
            session = build_session(recipe, ctx, kind, threads)
            state = read_checkpoint(checkpoint_dir, ctx)
            if state is not None:
                restore(session, state)
            return _train(session, report, checkpoint_dir, on_step, speed_cache)
    finally:
        teardown_distributed(ctx)


def _train(
    session: Session,
    report: Reporter | None,
    checkpoint_dir: str | Path | None,
    on_step: StepHook | None,
    speed_cache: str | Path | None,
) -> Metrics:
    for epoch in range(session.start_epoch, session.recipe.epochs):
        metrics = run_epoch(session, epoch, on_step, speed_cache)
        session.history.append(metrics)
        written = save_checkpoint(session, checkpoint_dir)
        if report is not None:
            report(dict(metrics), written)
    # A run resumed after its last epoch trains nothing and returns what it had.
    return dict(session.history[-1])


def run_epoch(
    session: Session,
    epoch: int,
    on_step: StepHook | None = None,
    speed_cache: str | Path | None = None,
) -> Metrics:
    """Train one epoch (0-based), evaluate, and return the epoch's reduced metrics.

    The last epoch adds the inference speed (rsearch.train.speed; speed_cache as in fit).
    Time spent waiting for another trial's speed measurement on the node is not counted.
    """
    start = time.perf_counter()
    pauses = Pauses(session.device)
    enter_epoch(session, epoch)
    session.scheduler.step(epoch)
    lr = base_optimizer(session.step.optimizer).param_groups[0]["lr"]
    train_sums, train_s = train_epoch(session, epoch, on_step, pauses)
    val_scores = new_scores(session.recipe.data, session.data.num_classes)
    val_sums = _evaluate_model(session, session.model, pauses, val_scores)
    ema = session.step.ema
    ema_sums = _evaluate_model(session, ema.module, pauses) if ema is not None else None
    at_sizes = _evaluate_resolutions(session, val_sums, pauses)
    evaluations = _evaluation_metrics(session, val_scores, pauses)
    seconds = (train_s, time.perf_counter() - start - pauses.seconds)
    reduced, work = _reduce(session, epoch, train_sums, val_sums, ema_sums, seconds)
    reduced.update(resolution_metrics({n: s.all_reduce(session.ctx) for n, s in at_sizes.items()}))
    reduced.update(evaluations)
    extra = tuple(n for n in at_sizes if n != session.fidelity.eval_size)
    work = replace(
        work,
        images_by_size=_images_by_size(session),
        extra_eval_sizes=extra,
        split_images=sum(len(split.files) for split in session.eval_splits),
    )
    metrics: Metrics = {"epoch": epoch + 1, **reduced, "lr": lr, **session.cost}
    metrics.update(epoch_compute(session.costs, work, session.history))
    metrics["device_kind"] = session.device_kind
    if epoch + 1 == session.recipe.epochs:
        metrics.update(_measure_inference(session, speed_cache))
    return metrics


def train_epoch(
    session: Session, epoch: int, on_step: StepHook | None = None, pauses: Pauses | None = None
) -> tuple[TrainSums, float]:
    """One pass over this rank's training batches, pausing at step boundaries when told.

    Returns:
        (this rank's sums, seconds the loop took without its pauses).
    """
    pauses = pauses or Pauses(session.device)
    paused_before = pauses.seconds
    batches = session.data.train
    batches.set_epoch(epoch)
    steps = len(batches)
    session.step.net.train()
    loss_sum = torch.zeros((), device=session.device)
    images = 0
    # data.train_resolutions: each step's transform resizes to the step's drawn resolution.
    per_step = session.step_transforms.for_epoch(epoch, steps)
    session.images_by_size = {}
    start = time.perf_counter()
    for index, (x, labels) in enumerate(batches, start=1):
        transform = per_step[index - 1] if per_step else session.train_transform
        inputs, targets = transform(x, labels)
        loss_sum += session.step(inputs, targets).float() * labels.shape[0]
        images += labels.shape[0]
        if per_step:
            size = transform.size
            session.images_by_size[size] = session.images_by_size.get(size, 0) + labels.shape[0]
        if on_step is not None:
            on_step(epoch + 1, index, steps)
        pauses.check()
    synchronize(session.device)
    seconds = time.perf_counter() - start - (pauses.seconds - paused_before)
    return TrainSums(loss=loss_sum.item(), images=float(images)), seconds


def _evaluate_model(
    session: Session, model: nn.Module, pauses: Pauses, scores: Scores | None = None
) -> EvalSums:
    average_batchnorm(model, session.ctx)
    return evaluate(
        model,
        session.data.val,
        session.eval_transform,
        session.dtype,
        session.data.num_classes,
        pauses,
        scores,
    )


def _evaluation_metrics(
    session: Session, val_scores: Scores | None, pauses: Pauses
) -> dict[str, float]:
    """The validation set's class metrics and every data.eval_splits set's metrics (all ranks').

    See rsearch.train.classify_metrics and rsearch.train.eval_splits.
    """
    cfg = session.recipe.data
    out = {}
    if val_scores is not None:
        out.update(class_metrics(*val_scores.gathered(session.ctx), cfg))
    model, classes = session.model, session.data.num_classes
    for split in session.eval_splits:
        scores = new_scores(cfg, classes)
        batches = split.batches(session.data, session.recipe, session.fidelity.eval_size)
        sums = evaluate(
            model, batches, session.eval_transform, session.dtype, classes, pauses, scores
        )
        out.update(split_metrics(split.name, sums, scores, cfg, session.ctx))
    return out


def _evaluate_resolutions(
    session: Session, val_sums: EvalSums, pauses: Pauses
) -> dict[int, EvalSums]:
    """This rank's sums at each test resolution of data.eval_resolutions.

    The one equal to the epoch's usual evaluation resolution reuses that evaluation's sums.
    """
    out = {}
    for tested in session.eval_sets:
        if tested.size == session.fidelity.eval_size:
            out[tested.size] = val_sums
            continue
        batches = tested.batches_of(session.data)
        model, classes = session.model, session.data.num_classes
        out[tested.size] = evaluate(
            model, batches, tested.transform, session.dtype, classes, pauses
        )
    return out


def _images_by_size(session: Session) -> dict[int, float] | None:
    """All ranks' training images of the epoch at each drawn resolution (None without a set)."""
    sizes = sorted(session.step_transforms.by_size)
    if not sizes:
        return None
    counts = torch.tensor([session.images_by_size.get(n, 0) for n in sizes], dtype=torch.float64)
    return dict(zip(sizes, all_reduce(counts, session.ctx, "sum").tolist(), strict=True))


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    batches: Batches,
    transform: EvalTransform,
    dtype: torch.dtype | None,
    num_classes: int,
    pauses: Pauses | None = None,
    scores: Scores | None = None,
) -> EvalSums:
    """Exact sums over this rank's validation images (not batch averages).

    With pauses, waits between batches while a speed measurement runs on the node; with
    scores, keeps every image's class probabilities (rsearch.train.classify_metrics).
    """
    was_training = model.training
    model.eval()
    k = min(5, num_classes)
    # Summed on the device in float64 and read once at the end: no per-batch host sync.
    loss = top1 = top5 = torch.zeros((), dtype=torch.float64)
    images = 0
    for x, labels in batches:
        with autocast(labels.device, dtype):
            logits = model(transform(x))
        logits = logits.float()
        hits = logits.topk(k, dim=1).indices.eq(labels[:, None])
        loss = loss + F.cross_entropy(logits, labels, reduction="sum").double()
        top1 = top1 + hits[:, 0].sum()
        top5 = top5 + hits.any(dim=1).sum()
        images += labels.numel()
        if scores is not None:
            scores.add(logits, labels)
        if pauses is not None:
            pauses.check()
    model.train(was_training)
    return EvalSums(loss=loss.item(), top1=top1.item(), top5=top5.item(), images=float(images))


def _reduce(
    session: Session,
    epoch: int,
    train: TrainSums,
    val: EvalSums,
    ema: EvalSums | None,
    seconds: tuple[float, float],
) -> tuple[dict[str, float], EpochWork]:
    """All ranks' losses, accuracies and times, and what the epoch did over all ranks."""
    train, val = train.all_reduce(session.ctx), val.all_reduce(session.ctx)
    # An epoch lasts as long as its slowest rank.
    train_s, epoch_s = all_reduce(torch.tensor(seconds), session.ctx, "max").tolist()
    out = {
        "train_loss": train.mean_loss,
        "val_loss": val.mean_loss,
        "val_top1": val.top1_pct,
        "val_top5": val.top5_pct,
    }
    if ema is not None:
        ema = ema.all_reduce(session.ctx)
        out["ema_val_top1"] = ema.top1_pct
        out["ema_val_loss"] = ema.mean_loss
    out["epoch_s"] = epoch_s
    out["train_images_per_s"] = train.images / train_s
    fidelity = session.fidelity
    work = EpochWork(
        epoch=epoch,
        train_size=fidelity.train_size,
        share=fidelity.share,
        eval_size=fidelity.eval_size,
        train_images=train.images,
        val_images=val.images,
        evaluations=1 if ema is None else 2,
        epoch_s=epoch_s,
        workers=session.ctx.world_size,
    )
    return out, work


def _measure_inference(session: Session, speed_cache: str | Path | None) -> dict[str, float]:
    # Rank 0 measures alone (ranks sharing a node would slow each other) and shares the numbers.
    result = None
    if session.ctx.is_main:
        result = measured_speed(session, speed_cache)
    return broadcast_object(result, session.ctx)
