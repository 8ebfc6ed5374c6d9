"""The training core: one recipe, trained with torch and timm only (no Ray, no MLflow).

    from rsearch.spec import Recipe
    from rsearch.train import fit

    metrics = fit(Recipe(epochs=3), report=lambda m, ckpt: print(m))

fit runs alone on a laptop, under torchrun, or inside Ray Train workers: it joins a process
group when one exists (or the environment asks for one) and reports through a callable.
"""

from rsearch.train.errors import TrainInputError
from rsearch.train.loop import Reporter, fit
from rsearch.train.measure import model_cost
from rsearch.train.run import run_recipe
from rsearch.train.session import Metrics

__all__ = ["Metrics", "Reporter", "TrainInputError", "fit", "model_cost", "run_recipe"]
