"""Training throughput of one worker, measured once per architecture and hardware, and cached.

Protocol: the recipe's architecture (model name and scaling knobs; dropout and stochastic depth
off) trains on random images at one resolution and per-worker batch, at the recipe's precision
and memory layout, with as many CPU threads as a worker holds. One warm-up step pays for
allocation and kernel choice; a batch whose next step takes more than a third of the budget is
shrunk to fit (and warmed up again). Then whole steps (forward, backward, an SGD update) are
timed until MEASURE_BUDGET_S has passed (at least MIN_STEPS) and the median step gives
images/s; the spread is the interquartile range over the median. Augmentation and data
loading are not timed.

Measurements are cached in `throughput.json` under rsearch's cache directory ($RSEARCH_CACHE,
else ~/.cache/rsearch), keyed by everything above plus the device's name and the torch version
(rsearch.cache: replaced atomically, an unreadable file ignored with a warning).

Without measuring (`--no-measure`), seconds come from FLOPs: a trial's training FLOPs per image
over the FLOPs/s of a reference model (resnet18 at 32 px, batch 32) measured once per device
kind the same way; a device kind absent from this machine (GPUs asked for on a CPU-only
machine) is priced at NOMINAL_FLOPS_PER_S, and the plan says so.
"""

from __future__ import annotations

import json
import statistics
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from rsearch.cache import JsonCache
from rsearch.machine import DeviceKind, device_name
from rsearch.plan.cost import (
    SpeedSource,
    device_kind,
    model_flops,
    worker_threads,
)
from rsearch.spec.model_section import ModelConfig, architecture
from rsearch.spec.recipe import Recipe
from rsearch.spec.search import Resources

CACHE_NAME = "throughput"

MEASURE_BUDGET_S = 2.0
"""Seconds of timed steps after the warm-up (a whole measurement takes about 3 s)."""

MIN_STEPS = 3
"""Timed steps at least, however long they take."""

MIN_BATCH = 2
"""Smallest batch a shrunk measurement uses (BatchNorm in train mode needs two images)."""

REFERENCE_MODEL = "resnet18"
REFERENCE_IMAGE_SIZE = 32
REFERENCE_BATCH = 32

NOMINAL_FLOPS_PER_S: dict[DeviceKind, float] = {"gpu": 10e12, "cpu": 50e9}
"""Training FLOPs/s assumed for a device kind this machine lacks (a GPU's fp32 ResNet training
rate is of this order; a cluster's CPU worker, one core's)."""


@dataclass(frozen=True)
class Rate:
    """Seconds one worker spends per training image, and where the number came from."""

    seconds_per_image: float
    source: SpeedSource


class Speed(Protocol):
    """Where a trial's device time comes from."""

    def train_rate(self, recipe: Recipe, image_size: int, resources: Resources) -> Rate:
        """One worker's seconds per training image of recipe's model at image_size."""
        ...


@dataclass(frozen=True)
class ThroughputKey:
    """Everything a training throughput depends on."""

    model: str
    """The architecture (rsearch.spec.model_section.architecture), as JSON."""
    num_classes: int
    image_size: int
    batch: int
    """Per-worker batch."""
    precision: str
    channels_last: bool
    device: str
    """Device kind and name, e.g. `cpu:Intel(R) Xeon(R) ...` or `cuda:NVIDIA A100-SXM4-40GB`."""
    threads: int
    torch: str

    def text(self) -> str:
        """The key as a stable string (the cache's JSON key)."""
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Measurement:
    """One measured training throughput."""

    images_per_s: float
    batch: int
    """Batch actually timed (smaller than the key's when a step would take too long)."""
    steps: int
    spread: float
    """Interquartile range of the step times over their median."""
    measured_at: float
    """Unix time of the measurement."""


def throughput_key(recipe: Recipe, image_size: int, resources: Resources) -> ThroughputKey:
    """The cache key of one worker of a trial training recipe at image_size on this machine."""
    import torch

    from rsearch.train.sources import count_classes

    kind = device_kind(resources)
    return ThroughputKey(
        model=architecture(recipe.model),
        num_classes=count_classes(recipe.data),
        image_size=image_size,
        batch=max(1, recipe.data.batch_size // resources.workers_per_trial),
        precision=recipe.precision,
        channels_last=recipe.channels_last,
        device=device_name(kind),
        threads=worker_threads(resources),
        torch=torch.__version__,
    )


def has_device(kind: DeviceKind) -> bool:
    """Whether this machine can train on a device kind."""
    import torch

    return kind == "cpu" or torch.cuda.is_available()


# --- the measurement --------------------------------------------------------------------------


def measure_train_throughput(key: ThroughputKey, budget_s: float = MEASURE_BUDGET_S) -> Measurement:
    """Time training steps of the key's architecture on this machine (see the module doc).

    Raises:
        TrainInputError: the model cannot be built, or the precision cannot run on the device.
    """
    import torch

    from rsearch.train.runtime import autocast_dtype

    device = torch.device("cuda", 0) if key.device.startswith("cuda") else torch.device("cpu")
    dtype = autocast_dtype(key.precision, device)
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):  # building the model must not move the global RNG
        torch.manual_seed(0)
        if device.type == "cpu":
            torch.set_num_threads(key.threads)
        try:
            step, layout = _train_step(key, device, dtype), _layout(key)
            return _time_steps(step, key, device, layout, budget_s)
        finally:
            torch.set_num_threads(threads)


def _train_step(key: ThroughputKey, device: Any, dtype: Any) -> Any:
    import torch
    from torch import nn

    from rsearch.spec.recipe import OptimConfig
    from rsearch.train.model import build_model
    from rsearch.train.optim import build_optimizer
    from rsearch.train.step import TrainStep

    recipe = Recipe(model=ModelConfig.model_validate_json(key.model))
    model = build_model(recipe, key.num_classes, load_weights=False).to(device)
    if key.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optim = OptimConfig()
    return TrainStep(
        net=model,
        model=model,
        loss_fn=nn.CrossEntropyLoss(),
        optimizer=build_optimizer(model, optim),
        scaler=torch.amp.GradScaler(device.type, enabled=dtype is torch.float16),
        clip=optim,
        ema=None,
        device=device,
        dtype=dtype,
    )


def _layout(key: ThroughputKey) -> Any:
    import torch

    return torch.channels_last if key.channels_last else torch.contiguous_format


def _time_steps(
    step: Any, key: ThroughputKey, device: Any, layout: Any, budget_s: float
) -> Measurement:
    batch = key.batch
    x, y = _batch(key, batch, device, layout)
    _timed(step, x, y, device)  # warm-up: allocation and kernel choice
    times = [_timed(step, x, y, device)]
    if times[0] > budget_s / MIN_STEPS and batch > MIN_BATCH:
        # A big model on a CPU: time a smaller batch; images/s barely depends on it there.
        batch = max(MIN_BATCH, int(batch * budget_s / MIN_STEPS / times[0]))
        x, y = _batch(key, batch, device, layout)
        _timed(step, x, y, device)
        times = []
    start = time.perf_counter()
    while len(times) < MIN_STEPS or time.perf_counter() - start < budget_s:
        times.append(_timed(step, x, y, device))
    median = statistics.median(times)
    quartiles = statistics.quantiles(times, n=4)
    return Measurement(
        images_per_s=batch / median,
        batch=batch,
        steps=len(times),
        spread=(quartiles[2] - quartiles[0]) / median,
        measured_at=time.time(),
    )


def _batch(key: ThroughputKey, batch: int, device: Any, layout: Any) -> tuple[Any, Any]:
    import torch

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, key.image_size, key.image_size, generator=gen)
    y = torch.randint(0, key.num_classes, (batch,), generator=gen)
    return x.to(device).contiguous(memory_format=layout), y.to(device)


def _timed(step: Any, x: Any, y: Any, device: Any) -> float:
    from rsearch.train.runtime import synchronize

    tick = time.perf_counter()
    step(x, y)
    synchronize(device)
    return time.perf_counter() - tick


# --- the cache --------------------------------------------------------------------------------


class ThroughputCache:
    """Measurements on disk (`throughput.json` under rsearch's cache directory)."""

    def __init__(self, path: Path | None = None):
        self.file = JsonCache(CACHE_NAME, path)

    @property
    def path(self) -> Path:
        """The cache file."""
        return self.file.path

    def get(self, key: ThroughputKey) -> Measurement | None:
        """The cached measurement of key, if any (a malformed entry counts as none)."""
        entry = self.file.get(key.text())
        try:
            return Measurement(**entry) if isinstance(entry, dict) else None
        except TypeError:
            return None

    def put(self, key: ThroughputKey, measurement: Measurement) -> None:
        """Add a measurement."""
        self.file.put(key.text(), asdict(measurement))

    def measurement(self, key: ThroughputKey) -> Measurement:
        """The cached measurement of key, measured (and cached) first if there is none."""
        found = self.get(key)
        if found is None:
            found = measure_train_throughput(key)
            self.put(key, found)
        return found


# --- speeds -----------------------------------------------------------------------------------


class MeasuredSpeed:
    """Throughput measured on this machine per architecture and resolution (cached)."""

    def __init__(self, cache: ThroughputCache | None = None):
        self.cache = cache or ThroughputCache()
        self._fallback = FlopsRateSpeed(self.cache)
        self._known: dict[ThroughputKey, Rate] = {}

    def train_rate(self, recipe: Recipe, image_size: int, resources: Resources) -> Rate:
        """Measured seconds per image; nominal when the device kind is absent here."""
        if not has_device(device_kind(resources)):
            return self._fallback.train_rate(recipe, image_size, resources)
        key = throughput_key(recipe, image_size, resources)
        if key not in self._known:  # every epoch of every trial asks; the file is read once
            self._known[key] = Rate(1.0 / self.cache.measurement(key).images_per_s, "measured")
        return self._known[key]


class FlopsRateSpeed:
    """Seconds from FLOPs: per-image training FLOPs over a reference model's FLOPs/s."""

    def __init__(self, cache: ThroughputCache | None = None):
        self.cache = cache or ThroughputCache()
        self._known: dict[tuple[DeviceKind, int], tuple[float, SpeedSource]] = {}

    def train_rate(self, recipe: Recipe, image_size: int, resources: Resources) -> Rate:
        """Training FLOPs of one image over the device kind's reference FLOPs/s."""
        flops_per_s, source = self.flops_per_s(resources)
        return Rate(model_flops(recipe, image_size, "train") / flops_per_s, source)

    def flops_per_s(self, resources: Resources) -> tuple[float, SpeedSource]:
        """The reference FLOPs/s of a worker of this kind, and its source."""
        key = (device_kind(resources), worker_threads(resources))
        if key not in self._known:
            self._known[key] = self._reference(resources)
        return self._known[key]

    def _reference(self, resources: Resources) -> tuple[float, SpeedSource]:
        kind = device_kind(resources)
        if not has_device(kind):
            warnings.warn(
                f"this machine has no {kind.upper()}: device-hours assume "
                f"{NOMINAL_FLOPS_PER_S[kind]:.3g} training FLOPs/s per worker",
                stacklevel=2,
            )
            return NOMINAL_FLOPS_PER_S[kind], "nominal"
        reference = Recipe.model_validate(
            {
                "model": {"name": REFERENCE_MODEL},
                "data": {"image_size": REFERENCE_IMAGE_SIZE, "batch_size": REFERENCE_BATCH},
            }
        )
        one = Resources(
            cpus_per_worker=resources.cpus_per_worker,
            gpus_per_worker=resources.gpus_per_worker,
        )
        key = throughput_key(reference, REFERENCE_IMAGE_SIZE, one)
        images_per_s = self.cache.measurement(key).images_per_s
        return images_per_s * model_flops(reference, REFERENCE_IMAGE_SIZE, "train"), "reference"
