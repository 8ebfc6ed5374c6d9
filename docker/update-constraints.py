"""Write docker/constraints.txt: the exact versions of rsearch's runtime dependencies, and of
theirs, as installed in the environment that runs this (the tested one: the project's venv).

    .venv/bin/python docker/update-constraints.py

The images install with `pip install -c docker/constraints.txt`, so they get the versions the
tests ran against instead of whatever is newest on the day of the build. torch, torchvision
and the CUDA libraries are left out: the Dockerfiles pin torch and torchvision themselves
(CPU wheels from PyTorch's index, CUDA wheels from PyPI), and torch pins its CUDA libraries.
Run it again after changing dependencies in pyproject.toml or upgrading the venv.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

OUT = Path(__file__).resolve().parent / "constraints.txt"
ROOT_PACKAGE = "rsearch"
PINNED_ELSEWHERE = re.compile(r"^(torch|torchvision|triton|nvidia-.*|cuda-.*)$")
"""Packages the Dockerfiles (or torch) pin, which differ between the CPU and CUDA images; the
packages they depend on are pinned here all the same."""
HEADER = """\
# Exact versions of rsearch's runtime dependencies (and theirs) from the tested environment,
# for `pip install -c docker/constraints.txt` in the images. Generated: do not edit; run
#   .venv/bin/python docker/update-constraints.py
# torch, torchvision and the CUDA libraries are pinned by the Dockerfiles instead.
"""


def runtime_closure(root: str = ROOT_PACKAGE) -> dict[str, str]:
    """Canonical name -> installed version of every package root needs at run time."""
    found: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(root)]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        elsewhere = PINNED_ELSEWHERE.match(name) is not None
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if elsewhere:  # e.g. the CUDA libraries beside a CPU torch
                continue
            raise
        if name != root and not elsewhere:  # their own dependencies are pinned all the same
            found[name] = dist.version
        for text in dist.requires or []:
            child = Requirement(text)
            if _applies(child, requirement.extras):
                todo.append(child)
    return dict(sorted(found.items()))


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    """Whether requirement holds here, for a package installed with these extras."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": e}) for e in (extras or {""}))


def render(pins: dict[str, str]) -> str:
    """The constraints file for pins."""
    return HEADER + "".join(f"{name}=={version}\n" for name, version in pins.items())


def main() -> None:
    OUT.write_text(render(runtime_closure()))
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
