"""Fixtures of the reliability suite: those of the Ray integration tests."""

from tests.tune.conftest import ray_2cpu

__all__ = ["ray_2cpu"]
