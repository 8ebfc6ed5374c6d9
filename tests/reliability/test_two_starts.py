"""Two searches started at the same moment on one machine both get their embedded Ray.

Each embedded Ray needs a free dashboard port, chosen before Ray binds it; two drivers
starting together used to pick the same port and the second died in `ray.init` with Ray's
traceback. The drivers here are real processes starting real Rays at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.figures import record

pytestmark = pytest.mark.slow

STARTER = """
import os, sys, time
from pathlib import Path
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.01)
import ray
from rsearch.tune.cluster import connect
connect(log_to_driver=False)
info = ray._private.worker.global_worker.node.address_info
print("dashboard", info["webui_url"])
ray.shutdown()
"""


def test_two_embedded_rays_started_at_once_both_start(tmp_path: Path) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    time.sleep(3)  # both have imported Python's start-up; they now wait for the same moment
    start = time.perf_counter()
    go.touch()
    outputs = [p.communicate(timeout=240) for p in starters]
    wall = time.perf_counter() - start

    for p, (_, err) in zip(starters, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert "Traceback" not in err
    urls = {out.split()[-1] for out, _ in outputs}
    assert len(urls) == 2, urls  # two dashboards, on two ports
    record(
        "two searches started at the same moment",
        "two drivers start embedded Rays at once on one machine",
        1,
        "nothing (both started, two dashboard ports)",
        wall_s=round(wall, 1),
    )
