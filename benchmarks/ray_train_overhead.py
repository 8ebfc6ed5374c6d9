"""One trial's `fit` inside Ray Train against the same `fit` in this process.

Runs one recipe twice, side by side: in-process (`rsearch.train.fit`, torch using the CPUs it
is given) and as a Ray Train TorchTrainer with one worker holding the same CPUs (what a trial
of `rsearch run` does, minus Tune). Prints wall time including start-up, and the steady-state
epoch time (epochs 2..N), with their ratios.

    .venv/bin/python benchmarks/ray_train_overhead.py --epochs 4 --cpus 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

from rsearch.spec import Recipe


def recipe_for(epochs: int, model: str, size: int) -> Recipe:
    """resnet18 on the digits data at `size` px: a realistic, small trial."""
    return Recipe.model_validate(
        {
            "model": {"name": model},
            "data": {"dataset": "digits", "image_size": size, "batch_size": 64},
            "augment": {"random_resized_crop": False, "hflip": 0.0},
            "epochs": epochs,
        }
    )


def in_process(recipe: Recipe, cpus: int) -> tuple[float, list[float]]:
    """Wall seconds and per-epoch seconds of fit in this process."""
    from rsearch.train import fit

    epochs: list[float] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        fit(recipe, lambda m, _: epochs.append(m["epoch_s"]), checkpoint_dir=d, threads=cpus)
    return time.perf_counter() - start, epochs


def in_ray_train(recipe: Recipe, cpus: int) -> tuple[float, list[float]]:
    """Wall seconds and per-epoch seconds of the same fit as a one-worker TorchTrainer."""
    import ray.train
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from rsearch.tune.trainable import worker_loop

    epochs: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        trainer = TorchTrainer(
            worker_loop,
            train_loop_config={"recipe": recipe.model_dump(mode="json"), "cpus": cpus},
            scaling_config=ScalingConfig(num_workers=1, resources_per_worker={"CPU": cpus}),
            run_config=RunConfig(name="overhead", storage_path=d),
        )
        result = trainer.fit()
        wall = time.perf_counter() - start
        metrics: Any = result.metrics_dataframe
        if metrics is not None and "epoch_s" in metrics:
            epochs = [float(x) for x in metrics["epoch_s"]]
    _ = ray.train  # imported for its side effect of registering Train V2
    return wall, epochs


def main() -> None:
    """Measure both and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=args.cpus, include_dashboard=True, log_to_driver=False)
    recipe = recipe_for(args.epochs, args.model, args.size)
    local_wall, local_epochs = in_process(recipe, args.cpus)
    ray_wall, ray_epochs = in_ray_train(recipe, args.cpus)
    ray.shutdown()

    def steady(xs: list[float]) -> float:
        tail = xs[1:] or xs
        return sum(tail) / len(tail)

    print(f"{args.model} on digits at {args.size} px, {args.epochs} epochs, {args.cpus} CPUs")
    print(
        f"  wall     in-process {local_wall:7.1f} s | Ray Train {ray_wall:7.1f} s | "
        f"ratio {ray_wall / local_wall:.2f}"
    )
    print(
        f"  epoch    in-process {steady(local_epochs):7.2f} s | Ray Train "
        f"{steady(ray_epochs):7.2f} s | ratio {steady(ray_epochs) / steady(local_epochs):.3f}"
        " (target <= 1.10)"
    )


if __name__ == "__main__":
    main()
