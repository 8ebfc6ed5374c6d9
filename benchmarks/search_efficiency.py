"""Does rsearch find better recipes for less compute than the alternatives? (rsearch issue 13)

A tabular benchmark, as HPOBench, LCBench and NAS-Bench are: real learning curves of a grid of
48 recipes (resnet18 on the bundled digits, 15% of the training set, 9 epochs; constant 32 px,
and progressive 16 -> 24 -> 32 px) are trained once with rsearch's training core; each search
method is then replayed against the table at the same FLOPs budget, with several seeds. A
trial trains nothing: it reads its curve and spends each epoch's FLOPs and seconds.

    # the table (committed; about an hour on 2 cores busy with other work)
    PYTHONPATH=. .venv/bin/python -m benchmarks.search_efficiency --build-table --kinds epochs
    PYTHONPATH=. .venv/bin/python -m benchmarks.search_efficiency --build-table --kinds progressive
    # every method, 5 seeds (about 15 minutes; the Ray methods take the time)
    PYTHONPATH=. .venv/bin/python -m benchmarks.search_efficiency --seeds 5

Results and the verdict: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.efficiency import report
from benchmarks.efficiency.build import build_table
from benchmarks.efficiency.ledger import Ledger
from benchmarks.efficiency.table import BASE_RECIPE, KINDS, Table, load_table

RESULTS = Path(__file__).parent / "results"
TABLE = RESULTS / "search_efficiency_table.json"
OUTPUT = RESULTS / "search_efficiency.json"
FIGURE = Path(__file__).parent / "search_efficiency.png"

EPOCHS = int(BASE_RECIPE["epochs"])
Runner = Callable[[Table, int, argparse.Namespace, float], tuple[Ledger, float]]

METHODS: dict[str, str] = {
    "random": "random search, no stopping (Optuna RandomSampler, in-process)",
    "tpe": "TPE, no stopping (rsearch's TPE config, in-process)",
    "optuna-sha": "plain Optuna: TPESampler + SuccessiveHalvingPruner (in-process)",
    "optuna-hyperband": "plain Optuna: TPESampler + HyperbandPruner (in-process)",
    "rsearch-asha-epochs": "rsearch: TPE + ASHA over epochs (Ray Tune)",
    "rsearch-asha-compute": "rsearch: TPE + ASHA over compute, progressive curves (Ray Tune)",
    "rsearch-asha-epochs-grace3": "rsearch: TPE + ASHA over epochs, first rung at 3 (Ray Tune)",
    "ray-optunasearch-asha": "stock Ray Tune: OptunaSearch + ASHAScheduler",
}
RAY_METHODS = (
    "rsearch-asha-epochs",
    "rsearch-asha-compute",
    "rsearch-asha-epochs-grace3",
    "ray-optunasearch-asha",
)


def _runner(method: str) -> Runner:
    from benchmarks.efficiency import inprocess, raytune

    epochs = EPOCHS

    def run(table: Table, seed: int, args: argparse.Namespace, budget: float) -> Any:
        conc, tick = args.concurrency, args.tick
        if method in ("random", "tpe"):
            sampler = inprocess.rsearch_sampler(method, seed, table.grid)
            return inprocess.run_study(table, "epochs", sampler, None, budget)
        if method.startswith("optuna-"):
            kind = "sha" if method == "optuna-sha" else "hyperband"
            sampler, pruner = inprocess.plain_optuna(kind, seed, epochs)
            return inprocess.run_study(table, "epochs", sampler, pruner, budget)
        if method in ("rsearch-asha-epochs", "rsearch-asha-epochs-grace3"):
            scheduler = method.removeprefix("rsearch-")
            return raytune.run_rsearch(table, "epochs", scheduler, seed, budget, conc, tick)
        if method == "rsearch-asha-compute":
            return raytune.run_rsearch(
                table, "progressive", "asha-compute", seed, budget, conc, tick
            )
        return raytune.run_stock(table, seed, budget, conc, tick, epochs)

    return run


def unavailable(method: str, table: Table) -> str | None:
    """Why a method cannot run with this table and this rsearch (None: it can)."""
    if method != "rsearch-asha-compute":
        return None
    if "progressive" not in table.curves:
        return "the table has no progressive curves"
    from benchmarks.efficiency.specs import search_spec
    from rsearch.tune.schedulers import make_scheduler

    spec = search_spec("progressive", "tpe", "asha-compute", 0, grid=table.grid)
    if getattr(make_scheduler(spec), "_time_attr", "epoch") == "epoch":
        return "this rsearch's ASHA ignores `unit: compute` (it counts epochs)"
    return None


def replay(table: Table, args: argparse.Namespace) -> dict[str, Any]:
    """Every method, every seed; the per-run numbers and trajectories."""
    full = table.full_trial_flops("epochs")
    full_train = sum(next(iter(table.curves["epochs"].values())).train_flops)
    budget = args.budget_trials * full
    target = report.target_top1(table, args.percentile)
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    skipped = {m: why for m in methods if (why := unavailable(m, table))}
    if any(m in RAY_METHODS and m not in skipped for m in methods):
        from benchmarks.efficiency.raytune import start_ray

        start_ray(args.concurrency)
    runs: dict[str, list[dict[str, Any]]] = {}
    for method in methods:
        if method in skipped:
            print(f"{method}: skipped ({skipped[method]})")
            continue
        for seed in range(args.seeds):
            ledger, wall = _runner(method)(table, seed, args, budget)
            row = ledger.summary(target, full)
            # Ray trials sleep `tick` per full epoch's FLOPs, `concurrency` at once.
            sleep = args.tick * ledger.spent_flops / (full / EPOCHS) / args.concurrency
            train = row["to_target_train_flops"]
            row.update(
                to_target_train_full_trials=None if train is None else train / full_train,
                seed=seed,
                wall_s=wall,
                machinery_s=wall - sleep if method in RAY_METHODS else wall,
                trajectory=_compact(report.curve_points(ledger, full)),
            )
            runs.setdefault(method, []).append(row)
            print(
                f"{method:<22} seed {seed}: to target "
                f"{_fmt(row['to_target_full_trials'])} full trials, "
                f"best {_fmt(row['best_at_budget'])}, "
                f"{row['trials']} trials, {wall:.1f} s",
                flush=True,
            )
    return {"runs": runs, "skipped": skipped, "budget_flops": budget, "target": target}


def _compact(points: list[tuple[float, float]]) -> list[list[float]]:
    """The trajectory's points where the best changed, and its last point."""
    out: list[list[float]] = []
    for x, best in points:
        if best == best and (not out or best != out[-1][1]):  # skip NaN, keep changes
            out.append([round(x, 4), best])
    if points and points[-1][1] == points[-1][1]:
        out.append([round(points[-1][0], 4), points[-1][1]])
    return out


def _fmt(value: float | None, digits: int = 1) -> str:
    return "never" if value is None else f"{value:.{digits}f}"


def main() -> None:
    """Build the table, or replay the methods against it and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-table", action="store_true", help="train the table's curves")
    parser.add_argument("--kinds", default="epochs", help=f"curve kinds to build: {KINDS}")
    parser.add_argument("--jobs", type=int, default=2, help="curves trained at once")
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--budget-trials", type=float, default=30, help="budget in full-budget trials' FLOPs"
    )
    parser.add_argument(
        "--percentile", type=float, default=90, help="target: this percentile of random recipes"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="Ray trials at once")
    parser.add_argument(
        "--tick", type=float, default=0.2, help="Ray trials sleep this per full epoch's FLOPs"
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="replay nothing: summarise --output's runs again (table, goals, figure)",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="keep the other methods' runs already in --output (same settings) and replace "
        "only the --methods run now",
    )
    args = parser.parse_args()
    if args.build_table:
        build_table(args.table, args.kinds.split(","), args.jobs)
        return
    table = load_table(args.table)
    if args.report_only:
        previous = json.loads(args.output.read_text())
        result = {
            "runs": previous["runs"],
            "skipped": previous["skipped"],
            "budget_flops": previous["settings"]["budget_flops"],
            "target": previous["settings"]["target_top1"],
            "replay_wall_s": previous["replay_wall_s"],
            "commands": previous["commands"],
        }
        _write(summarise(table, result, args), args)
        return
    start = time.perf_counter()
    result = replay(table, args)
    result["commands"] = [command_line(args)]
    result["replay_wall_s"] = time.perf_counter() - start
    if args.update and args.output.exists():
        merge_previous(result, json.loads(args.output.read_text()), args)
    _write(summarise(table, result, args), args)


def _write(document: dict[str, Any], args: argparse.Namespace) -> None:
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=1) + "\n")
    print_report(document)
    print(f"results: {args.output}  figure: {args.figure}")


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this replay."""
    return (
        "PYTHONPATH=. .venv/bin/python -m benchmarks.search_efficiency "
        f"--methods {args.methods} --seeds {args.seeds} --budget-trials {args.budget_trials:g} "
        f"--concurrency {args.concurrency} --tick {args.tick:g}" + (" --update" * args.update)
    )


def merge_previous(result: dict[str, Any], previous: dict[str, Any], args: Any) -> None:
    """Add the runs of methods not run now from a previous results file with the same settings.

    Raises:
        SystemExit: the previous file was made with another budget, target or seed count.
    """
    settings = previous["settings"]
    same = (
        settings["budget_flops"] == result["budget_flops"]
        and settings["target_top1"] == result["target"]
        and settings["seeds"] == args.seeds
        and settings["concurrency_ray"] == args.concurrency
        and settings["tick_s"] == args.tick
    )
    if not same:
        raise SystemExit(f"--update: {args.output} was made with other settings: {settings}")
    for method, runs in previous["runs"].items():
        result["runs"].setdefault(method, runs)
    for method, why in previous["skipped"].items():
        if method not in result["runs"]:
            result["skipped"].setdefault(method, why)
    result["replay_wall_s"] += previous["replay_wall_s"]
    result["commands"] = [*previous.get("commands", []), *result.get("commands", [])]


def summarise(table: Table, result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The results document: settings, the table's character, per-method numbers, goals."""
    runs = {m: result["runs"][m] for m in METHODS if m in result["runs"]}  # a fixed order
    summary = {m: report.method_summary(rs) for m, rs in runs.items()}
    curves = {m: [[tuple(p) for p in r["trajectory"]] for r in rs] for m, rs in runs.items()}
    report.plot(curves, result["target"], args.budget_trials, args.figure)
    return {
        "commands": result["commands"],
        "settings": {
            "budget_full_trials": args.budget_trials,
            "budget_flops": result["budget_flops"],
            "full_trial_flops": table.full_trial_flops("epochs"),
            "target_percentile": args.percentile,
            "target_top1": result["target"],
            "concurrency_ray": args.concurrency,
            "tick_s": args.tick,
            "seeds": args.seeds,
        },
        "table": describe_table(table),
        "methods": METHODS,
        "skipped": result["skipped"],
        "summary": summary,
        "goals": goals(summary),
        "replay_wall_s": result["replay_wall_s"],
        "runs": runs,
    }


def describe_table(table: Table) -> dict[str, Any]:
    """Spread of final top-1, rank correlation of each epoch with the final, eval's share."""
    out: dict[str, Any] = {"meta": table.meta}
    for kind in table.curves:
        curves = list(table.curves[kind].values())
        flops = sum(sum(c.flops) for c in curves)
        out[kind] = {
            "spread": report.spread(table, kind),
            "spearman_epoch_vs_final": report.rank_correlations(table, kind),
            "eval_share_of_flops": sum(sum(c.eval_flops) for c in curves) / flops,
            "trial_flops_vs_epochs_kind": (flops / len(curves)) / table.full_trial_flops(),
            "cumulative_fidelity": [
                round(sum(curves[0].fidelity[: e + 1]), 4) for e in range(curves[0].epochs)
            ],
        }
    return out


def goals(summary: dict[str, Any]) -> dict[str, Any]:
    """The issue's three goals as ratios of medians over seeds."""

    def med(method: str, key: str) -> float | None:
        return summary.get(method, {}).get(key, {}).get("median")

    key, train = "to_target_full_trials", "to_target_train_full_trials"
    asha = med("rsearch-asha-epochs", key)
    return {
        "tpe_asha_vs_random": {
            "ratio": report.ratio(med("random", key), asha),
            "goal": ">= 3",
        },
        "compute_vs_epoch_fidelity": {
            "ratio": report.ratio(asha, med("rsearch-asha-compute", key)),
            "goal": ">= 1.5",
            # The same ratio counting training FLOPs only: how much evaluation costs the idea.
            "ratio_training_flops_only": report.ratio(
                med("rsearch-asha-epochs", train), med("rsearch-asha-compute", train)
            ),
        },
        "rsearch_vs_stock_to_target": {
            "ratio": report.ratio(med("ray-optunasearch-asha", key), asha),
            "goal": ">= 1 (stock's compute to target over rsearch's)",
        },
        "rsearch_vs_stock_best_at_budget": {
            "rsearch": med("rsearch-asha-epochs", "best_at_budget"),
            "stock": med("ray-optunasearch-asha", "best_at_budget"),
            "goal": "rsearch >= stock",
        },
    }


def print_report(doc: dict[str, Any]) -> None:
    """The results as plain-text tables."""
    s = doc["settings"]
    print(
        f"\nbudget {s['budget_full_trials']:g} full trials ({s['budget_flops']:.3g} FLOPs), "
        f"target top-1 {s['target_top1']:.2f}% (p{s['target_percentile']:g} of random recipes)"
    )
    for kind, info in doc["table"].items():
        if kind == "meta":
            continue
        sp = info["spread"]
        rho = ", ".join(f"e{e}: {r:.2f}" for e, r in info["spearman_epoch_vs_final"].items())
        print(
            f"table {kind}: {sp['recipes']} recipes, final top-1 min {sp['min']:.1f} p10 "
            f"{sp['p10']:.1f} median {sp['median']:.1f} p90 {sp['p90']:.1f} max {sp['max']:.1f}; "
            f"eval {100 * info['eval_share_of_flops']:.0f}% of FLOPs; spearman {rho}"
        )
    header = (
        f"{'method':<26} {'reached':>7} {'to target, full trials':>24} {'device-s to target':>18} "
        f"{'best at budget':>20} {'trials':>7} {'machinery s':>18}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for method, m in doc["summary"].items():
        t, b = m["to_target_full_trials"], m["best_at_budget"]
        print(
            f"{method:<26} {t['reached']:>3}/{t['seeds']:<3} "
            f"{_range(t, 1):>24} {_range(m['to_target_seconds'], 0):>18} "
            f"{_range(b, 1):>20} {_fmt(m['trials']['median'], 0):>7} "
            f"{_range(m['machinery_s'], 1):>18}"
        )
    print("\ngoals (ratios of medians over seeds):")
    for name, g in doc["goals"].items():
        value = g.get("ratio")
        shown = _fmt(value, 2) if "ratio" in g else f"{_fmt(g['rsearch'])} vs {_fmt(g['stock'])}"
        print(f"  {name:<34} {shown:>14}   goal {g['goal']}")


def _range(stat: dict[str, Any], digits: int) -> str:
    return (
        f"{_fmt(stat['median'], digits)} [{_fmt(stat['min'], digits)}-{_fmt(stat['max'], digits)}]"
    )


if __name__ == "__main__":
    main()
