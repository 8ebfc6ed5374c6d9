"""The plan as `rsearch plan` prints it: trials, rungs and the bill, readable at 80 columns."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from rsearch.plan.bill import Plan

PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def flops_text(flops: float) -> str:
    """FLOPs with an SI prefix: 4.66 TFLOPs."""
    for scale, prefix in PREFIXES:
        if flops >= scale:
            return f"{flops / scale:.3g} {prefix}FLOPs"
    return f"{flops:.3g} FLOPs"


def hours_text(hours: float) -> str:
    """A duration in the unit that reads best: 42 s, 6.4 min, 3.2 h."""
    seconds = hours * 3600
    if seconds < 90:
        return f"{seconds:.3g} s"
    if seconds < 5400:
        return f"{seconds / 60:.3g} min"
    return f"{hours:.3g} h"


def plan_renderables(plan: Plan) -> list[RenderableType]:
    """The plan's headline, trial table, rung table, bill and notes."""
    return [_headline(plan), _trials(plan), _rungs(plan), _bill(plan), _notes(plan)]


def _headline(plan: Plan) -> Text:
    where = f"{plan.cluster.cpus:g} CPUs, {plan.cluster.gpus:g} GPUs ({plan.cluster.source})"
    scheduler: str = plan.scheduler
    if plan.max_t is not None:
        scheduler += f", max_t {plan.max_t:g} {plan.unit}"
    return Text(
        f"plan of {plan.name!r}: {plan.num_trials} trials, scheduler {scheduler}; "
        f"{plan.concurrency} at once on {where}; {plan.workers_per_trial} "
        f"{plan.device_kind.upper()} worker(s) a trial"
    )


def _trials(plan: Plan) -> Table:
    table = Table(title="trials (expected under the scheduler)", title_justify="left")
    for name in ("trial", "model", "px", "epochs", "FLOPs", "device", "img/s"):
        table.add_column(name, justify="left" if name == "model" else "right", overflow="fold")
    for t in plan.trials:
        table.add_row(
            str(t.number),
            t.model,
            str(t.image_size),
            f"{t.expected.epochs:.3g} of {t.epochs}",
            flops_text(t.expected.flops),
            hours_text(t.expected.device_hours),
            f"{t.train_images_per_s:.3g}",
        )
    return table


def _rungs(plan: Plan) -> RenderableType:
    if not any(b.rungs for b in plan.brackets):
        return Text(f"rungs: none ({plan.scheduler}): every trial runs its whole budget")
    table = Table(title=f"rungs ({plan.unit})", title_justify="left")
    for name in ("bracket", "trials", "milestones: trials reaching", "to the end"):
        table.add_column(name, justify="right", overflow="fold")
    for index, bracket in enumerate(plan.brackets):
        ladder = ", ".join(f"{r.milestone:g}: {r.trials}" for r in bracket.rungs) or "-"
        end = "budget" if bracket.end is None else f"{bracket.end:g}"
        table.add_row(str(index), str(bracket.trials), ladder, f"{bracket.to_end} to {end}")
    return table


def _bill(plan: Plan) -> Table:
    bound = " (upper bound)" if plan.upper_bound else ""
    table = Table(title=f"bill{bound}", title_justify="left", show_header=False)
    table.add_column("item")
    table.add_column("amount", justify="right")
    table.add_row("training FLOPs", flops_text(plan.total_train_flops))
    table.add_row("evaluation FLOPs", flops_text(plan.total_eval_flops))
    table.add_row("total FLOPs", flops_text(plan.total_flops))
    for kind, hours in plan.device_hours.items():
        table.add_row(f"{kind.upper()} device-hours", f"{hours:.3g}")
    table.add_row(f"wall-clock at {plan.concurrency} at once", hours_text(plan.wall_clock_hours))
    if plan.budget is not None:
        budget = plan.budget
        limits = []
        if budget.flops is not None:
            limits.append(flops_text(budget.flops))
        if budget.device_hours is not None:
            limits.append(f"{budget.device_hours:g} device-hours")
        verdict = "fits" if budget.fits else f"{budget.trials_that_fit} trials fit"
        table.add_row(f"budget ({', '.join(limits)})", verdict)
    return table


def _notes(plan: Plan) -> Group:
    return Group(*(Text(f"- {note}") for note in plan.notes))
