"""Throughput measured once per architecture and hardware, cached in a JSON file."""

from __future__ import annotations

import json
import multiprocessing
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rsearch.cache import JsonCache
from rsearch.plan import FlopsRateSpeed, MeasuredSpeed, ThroughputCache
from rsearch.plan.cost import model_flops
from rsearch.plan.throughput import (
    NOMINAL_FLOPS_PER_S,
    Measurement,
    measure_train_throughput,
    throughput_key,
)
from rsearch.spec.recipe import Recipe
from rsearch.spec.search import Resources

TINY = Recipe.model_validate(
    {"model": {"name": "test_resnet"}, "data": {"image_size": 16, "batch_size": 8}}
)
ONE = Resources()


def _entries(path: Path) -> dict[str, dict[str, float]]:
    data = json.loads(path.read_text())
    assert data["version"] == 1
    return data["entries"]


def test_measured_once_then_read_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "throughput.json"
    first = MeasuredSpeed(ThroughputCache(path)).train_rate(TINY, 16, ONE)
    assert first.source == "measured" and first.seconds_per_image > 0
    (key, entry), *others = _entries(path).items()
    assert not others
    assert json.loads(key)["batch"] == 8 and json.loads(key)["image_size"] == 16
    assert entry["images_per_s"] == pytest.approx(1 / first.seconds_per_image)
    assert entry["steps"] >= 3 and entry["spread"] >= 0
    # A sentinel written into the file is what a fresh reader gets: it was not measured again.
    entry["images_per_s"] = 12345.0
    path.write_text(json.dumps({"version": 1, "entries": {key: entry}}))
    again = MeasuredSpeed(ThroughputCache(path)).train_rate(TINY, 16, ONE)
    assert again.seconds_per_image == pytest.approx(1 / 12345.0)
    # Another resolution is another measurement.
    MeasuredSpeed(ThroughputCache(path)).train_rate(TINY, 24, ONE)
    assert len(_entries(path)) == 2


@pytest.mark.parametrize(
    "damage",
    ["{not json", '{"version": 99, "entries": {}}', "[1, 2]", '{"version": 1, "entries": 7}'],
)
def test_an_unreadable_cache_reads_as_empty_with_a_warning(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "any.json"
    path.write_text(damage)
    cache = JsonCache("any", path)
    with pytest.warns(UserWarning, match="ignoring the unreadable cache"):
        assert cache.read() == {}
    with pytest.warns(UserWarning):
        cache.put("k", {"n": 1})
    assert _entries(path) == {"k": {"n": 1}}  # rewritten whole


def test_a_damaged_throughput_cache_is_measured_again(tmp_path: Path) -> None:
    path = tmp_path / "throughput.json"
    path.write_text('{"version": 1, "entries": {"x": ')  # cut short mid-write
    with pytest.warns(UserWarning, match="ignoring the unreadable cache"):
        rate = MeasuredSpeed(ThroughputCache(path)).train_rate(TINY, 16, ONE)
    assert rate.seconds_per_image > 0
    assert len(_entries(path)) == 1


def test_a_malformed_entry_counts_as_none(tmp_path: Path) -> None:
    cache = ThroughputCache(tmp_path / "t.json")
    key = throughput_key(TINY, 16, ONE)
    cache.file.put(key.text(), {"images_per_s": 3.0})  # fields missing
    assert cache.get(key) is None


def test_the_key_names_what_the_speed_depends_on() -> None:
    key = throughput_key(TINY, 16, Resources(workers_per_trial=2, cpus_per_worker=3))
    assert key.batch == 4 and key.threads == 3 and key.device.startswith("cpu:")
    assert key.torch == torch.__version__
    # Dropout and stochastic depth are not part of the architecture's speed key.
    regularised = TINY.model_copy(deep=True)
    regularised.model.drop_path_rate = 0.1
    assert throughput_key(regularised, 16, ONE) == throughput_key(TINY, 16, ONE)
    wider = TINY.model_copy(deep=True)
    wider.model.width_multiplier = 2.0
    assert throughput_key(wider, 16, ONE) != throughput_key(TINY, 16, ONE)


def test_a_slow_step_is_timed_on_a_smaller_batch() -> None:
    key = replace(throughput_key(TINY, 16, ONE), batch=64)
    measured = measure_train_throughput(key, budget_s=1e-6)  # any step is too slow for this
    assert 2 <= measured.batch < 64
    assert measured.steps >= 3


def _hammer(path: str, worker: int) -> None:
    cache = JsonCache("x", Path(path))
    for i in range(200):
        cache.put(f"{worker}-{i}", {"n": i})


def test_concurrent_writers_never_leave_a_torn_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    # fork: the writers need nothing but the cache module, already imported here
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_hammer, args=(str(path), w)) for w in range(2)]
    for w in writers:
        w.start()
    reads = 0
    while any(w.is_alive() for w in writers):
        if path.exists():
            json.loads(path.read_text())  # always a whole file
            reads += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    entries = _entries(path)
    assert entries and all(isinstance(v, dict) for v in entries.values())
    assert not list(tmp_path.glob(".shared.*"))  # no temporary file left behind


def test_reference_flops_rate_prices_by_flops(tmp_path: Path) -> None:
    cache = ThroughputCache(tmp_path / "t.json")
    speed = FlopsRateSpeed(cache)
    rate, source = speed.flops_per_s(ONE)
    assert source == "reference" and rate > 0
    small, large = speed.train_rate(TINY, 16, ONE), speed.train_rate(TINY, 32, ONE)
    assert large.seconds_per_image / small.seconds_per_image == pytest.approx(
        model_flops(TINY, 32, "train") / model_flops(TINY, 16, "train")
    )
    assert len(_entries(cache.path)) == 1  # the reference model, measured once


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: nothing is nominal")
def test_a_device_this_machine_lacks_is_priced_nominally(tmp_path: Path) -> None:
    gpu = Resources(gpus_per_worker=1)
    with pytest.warns(UserWarning, match="this machine has no GPU"):
        rate = MeasuredSpeed(ThroughputCache(tmp_path / "t.json")).train_rate(TINY, 16, gpu)
    assert rate.source == "nominal"
    assert rate.seconds_per_image == pytest.approx(
        model_flops(TINY, 16, "train") / NOMINAL_FLOPS_PER_S["gpu"]
    )
    assert not (tmp_path / "t.json").exists()  # nothing was measured


def test_measurement_round_trips_through_the_cache(tmp_path: Path) -> None:
    cache = ThroughputCache(tmp_path / "t.json")
    key = throughput_key(TINY, 16, ONE)
    stored = Measurement(images_per_s=10.0, batch=8, steps=3, spread=0.1, measured_at=1.0)
    cache.put(key, stored)
    assert ThroughputCache(tmp_path / "t.json").get(key) == stored
