"""Inference speed measured once per key, cached, never while other trials train on the node.

The processes that compete for the node's lock are real (multiprocessing, spawn); no
assertion is about how fast anything ran.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from rsearch.cache import JsonCache
from rsearch.train import fit, speed
from rsearch.train.speed import (
    CACHE_NAME,
    QUIET_NAME,
    SPEED_METRICS,
    Pauses,
    cached_speed,
)
from tests.train.speed_helpers import FAKE_METRICS, hold_measurement, measure_sizes, tiny_key
from tests.train.train_helpers import RecipeFactory

SPAWN = multiprocessing.get_context("spawn")


def _entries(path: Path) -> dict[str, Any]:
    return JsonCache(CACHE_NAME, path).read()


def _speed(metrics: dict[str, Any]) -> dict[str, Any]:
    return {name: metrics[name] for name in SPEED_METRICS}


class Counter:
    """Wraps speed.inference_speed, counting the measurements."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.calls: list[int] = []
        real = speed.inference_speed

        def counted(*args: Any, **kwargs: Any) -> dict[str, float]:
            self.calls.append(args[1])  # the resolution
            return real(*args, **kwargs)

        monkeypatch.setattr(speed, "inference_speed", counted)


def test_an_architecture_is_measured_once_per_key(
    make_recipe: RecipeFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    counter = Counter(monkeypatch)
    run, other_run = tmp_path / "run" / "speed.json", tmp_path / "other" / "speed.json"
    first = fit(make_recipe(), speed_cache=run)
    # Another trial of the architecture: what it learns with does not change the network.
    second = fit(make_recipe(seed=7, model={"drop_rate": 0.2}), speed_cache=run)
    assert counter.calls == [16]
    assert _speed(second) == _speed(first)
    ((key, entry),) = _entries(run).items()
    assert json.loads(key)["image_size"] == 16 and entry["metrics"] == _speed(first)
    # A later search on this machine: the shared cache, copied into the new run's.
    assert _speed(fit(make_recipe(), speed_cache=other_run)) == _speed(first)
    assert counter.calls == [16] and _entries(other_run) == _entries(run)
    ((shared_key, shared_entry),) = JsonCache(CACHE_NAME).read().items()
    assert json.loads(shared_key)["hardware"] == entry["hardware"] and shared_entry == entry
    # Another evaluation resolution is another measurement, kept beside the first.
    fit(make_recipe(data={"eval_image_size": 24}), speed_cache=run)
    assert counter.calls == [16, 24] and len(_entries(run)) == 2


def test_without_a_run_cache_the_shared_cache_serves(tmp_path: Path) -> None:
    calls: list[int] = []

    def measure() -> dict[str, float]:
        calls.append(1)
        return FAKE_METRICS

    node = tmp_path / "node"
    first = cached_speed(tiny_key(16), measure, None, node)
    again = cached_speed(tiny_key(16), measure, None, node)
    assert (first.source, again.source, len(calls)) == ("measured", "shared", 1)
    assert again.entry == first.entry and again.metrics == FAKE_METRICS
    assert not (node / QUIET_NAME).exists()  # lowered once the measurement ended


def test_an_entry_this_version_cannot_read_is_measured_again(tmp_path: Path) -> None:
    run = tmp_path / "speed.json"
    JsonCache(CACHE_NAME, run).put(tiny_key(16).text(), {"metrics": {"images_per_s": 3.0}})
    found = cached_speed(tiny_key(16), lambda: FAKE_METRICS, run, tmp_path / "node")
    assert found.source == "measured"
    assert _entries(run)[tiny_key(16).text()]["metrics"] == FAKE_METRICS


def test_without_a_node_directory_it_measures_with_a_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.warns(UserWarning, match="without the node lock"):
        found = cached_speed(tiny_key(16), lambda: FAKE_METRICS, None, blocker / "node")
    assert found.source == "measured"


def test_the_shared_key_names_the_hardware_the_run_key_does_not() -> None:
    key = tiny_key(16)
    shared = json.loads(key.shared_text())
    assert shared.pop("hardware").startswith("cpu:") and shared.pop("torch") == torch.__version__
    assert shared == json.loads(key.text())


@pytest.mark.timeout(600)
def test_processes_on_a_node_measure_one_at_a_time_and_each_key_once(tmp_path: Path) -> None:
    node, run = tmp_path / "node", tmp_path / "run" / "speed.json"
    barrier, results = SPAWN.Barrier(2), SPAWN.Queue()
    orders = ([16, 24], [24, 16])  # without the lock the two would time 16 and 24 at once
    procs = [
        SPAWN.Process(target=measure_sizes, args=(str(node), str(run), sizes, barrier, results))
        for sizes in orders
    ]
    for proc in procs:
        proc.start()
    found = [row for _ in procs for row in results.get(timeout=540)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    sources = {size: sorted(source for s, source, _ in found if s == size) for size in (16, 24)}
    assert sources == {16: ["measured", "run"], 24: ["measured", "run"]}
    entries = _entries(run)
    for size, _source, entry in found:  # everyone reports the one measurement of its key
        assert entry == entries[tiny_key(size).text()]
    windows = sorted((e["started_at"], e["ended_at"]) for e in entries.values())
    assert len(windows) == 2 and windows[0][1] <= windows[1][0]
    # Which process measures which key is up to the scheduler: on one core (a pytest-xdist
    # worker is pinned to one) the first to start may measure both before the other asks.
    assert {e["pid"] for e in entries.values()} <= {p.pid for p in procs}


@pytest.mark.timeout(600)
def test_a_killed_measurers_flag_does_not_hold_training(
    make_recipe: RecipeFactory, own_speed_node: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = SPAWN.Event()
    holder = SPAWN.Process(target=hold_measurement, args=(str(own_speed_node), ready))
    holder.start()
    assert ready.wait(timeout=300)
    holder.kill()
    holder.join()
    flag = own_speed_node / QUIET_NAME
    assert flag.read_text() == str(holder.pid)  # left behind, its lock gone with the process
    waits: list[Path] = []
    real_wait = speed.wait_for_quiet
    monkeypatch.setattr(speed, "wait_for_quiet", lambda d: (waits.append(d), real_wait(d)))
    assert fit(make_recipe())["epoch"] == 1
    assert waits == [own_speed_node]  # the first step saw the flag, found it stale, removed it
    assert not flag.exists()


def test_training_waits_while_a_measurement_runs(own_speed_node: Path) -> None:
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def measure() -> dict[str, float]:
        started.set()
        release.wait(timeout=60)
        order.append("measured")
        return FAKE_METRICS

    measurer = threading.Thread(target=cached_speed, args=(tiny_key(16), measure, None))
    measurer.start()
    assert started.wait(timeout=60)
    pauses = Pauses(torch.device("cpu"))
    trainer = threading.Thread(target=lambda: (pauses.check(), order.append("resumed")))
    trainer.start()
    trainer.join(timeout=1.0)
    assert trainer.is_alive() and order == []  # held at its step boundary
    release.set()
    measurer.join(timeout=60)
    trainer.join(timeout=60)
    assert order == ["measured", "resumed"] and pauses.seconds > 0


def test_paused_time_is_left_out_of_the_epochs_timing(
    make_recipe: RecipeFactory, own_speed_node: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A flag up all epoch, and a clock on which each wait for it lasts an hour.
    own_speed_node.mkdir()
    (own_speed_node / QUIET_NAME).write_text("0")
    hour = 3600.0
    waits: list[Path] = []
    clock = SimpleNamespace(perf_counter=lambda: time.perf_counter() + hour * len(waits))
    clock.time = time.time
    monkeypatch.setattr("rsearch.train.loop.time", clock)
    monkeypatch.setattr(speed, "time", clock)
    monkeypatch.setattr(speed, "wait_for_quiet", waits.append)
    final = fit(make_recipe())  # 64 images in 4 steps of 16, then evaluation
    assert len(waits) > 4  # after every training step and every evaluation batch
    assert final["epoch_s"] < hour and final["device_s"] < hour
    assert 64 / final["train_images_per_s"] < hour
    assert not (own_speed_node / QUIET_NAME).exists()  # fit's own measurement raised and lowered it
