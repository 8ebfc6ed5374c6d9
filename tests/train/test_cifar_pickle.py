"""CIFAR batches are unpickled with only numpy's array globals: a hostile batch never runs.

The official CIFAR python batches were pickled by Python 2 (numpy 1 module names, byte strings
as protocol-2 BINSTRING); `_py2_batch` writes that format, so the allow-list is checked against
what the real files name, not only against what this Python writes.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rsearch.spec.data_section import DataConfig
from rsearch.train import TrainInputError
from rsearch.train.sources import load_source
from tests.cli.helpers import invoke
from tests.train.train_helpers import write_cifar


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table can be changed
    """Writes bytes as Python 2 wrote its str (BINSTRING) and numpy under numpy 1's names."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + len(obj).to_bytes(4, "little") + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def _py2_batch(batch: dict[bytes, Any]) -> bytes:
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(batch)
    # GLOBAL opcodes are newline-terminated text: the names can be swapped in place.
    return buffer.getvalue().replace(b"numpy._core.", b"numpy.core.")


def test_python2_cifar_batches_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, 4)],
            b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
            b"filenames": [b"a.png", b"b.png", b"c.png", b"d.png"],
        }
        raw = _py2_batch(batch)
        assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw  # numpy 1's name, as the files
        assert b"_codecs" not in raw  # byte strings as Python 2 wrote them
        (tmp_path / name).write_bytes(raw)
    source = load_source(DataConfig(dataset="cifar10", path=str(tmp_path)), 32, seed=0)
    assert len(source.train) == 20 and len(source.val) == 4
    assert source.val.images[3, 2, 31, 31] == batch[b"data"][3][3071]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_batches_written_by_this_python_load(tmp_path: Path, protocol: int) -> None:
    write_cifar(tmp_path, "cifar100", per_batch=3)
    for name in ("train", "test"):
        path = tmp_path / name
        path.write_bytes(pickle.dumps(pickle.loads(path.read_bytes()), protocol=protocol))
    source = load_source(DataConfig(dataset="cifar100", path=str(tmp_path)), 32, seed=0)
    assert len(source.train) == 3 and len(source.val) == 3


class _Payload:
    """Unpickling calls os.system with a command that leaves a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _hostile_cifar(root: Path, marker: Path) -> Path:
    write_cifar(root, "cifar10", per_batch=2)
    batch = {b"data": _Payload(marker), b"labels": [0, 1]}
    (root / "data_batch_2").write_bytes(pickle.dumps(batch))
    return root / "data_batch_2"


def test_hostile_batch_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hostile = _hostile_cifar(tmp_path / "c", marker)
    with pytest.raises(TrainInputError) as caught:
        load_source(DataConfig(dataset="cifar10", path=str(tmp_path / "c")), 32, seed=0)
    message = str(caught.value)
    assert str(hostile) in message and "posix.system" in message and "could run code" in message
    assert not marker.exists()


def test_hostile_batch_through_rsearch_train(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hostile = _hostile_cifar(tmp_path / "c", marker)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"model: {{name: test_resnet}}\ndata: {{dataset: cifar10, path: {tmp_path / 'c'}}}\n"
        "epochs: 1\n"
    )
    res = invoke("train", recipe, "--no-progress", "--metrics", tmp_path / "m.json")
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output + res.stderr
    assert f"cannot read CIFAR batch {str(hostile)!r}" in res.stderr
    assert not marker.exists() and not (tmp_path / "m.json").exists()
