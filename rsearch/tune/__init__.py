"""The Ray Tune + Optuna layer: the only package that imports ray.tune and ray.train.

Submodules import Ray lazily where they can, so `rsearch sample` (Optuna only) stays light.
"""
