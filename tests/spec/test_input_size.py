"""Models that cannot take the data's resolution are refused at validation, with file:line.

The probe runs for real (a child process building each model on torch's meta device); the
suite's RSEARCH_CACHE is shared by a session, so each architecture is probed once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rsearch.spec import SpecError, input_size, load_spec
from rsearch.spec.input_size import PROBED, input_facts
from rsearch.spec.load import load_recipe

ROOT = Path(__file__).resolve().parents[2]

SPEC = """\
name: t
objective: {metric: val_top1}
search: {algorithm: tpe, num_trials: 4}
resources: {workers_per_trial: 1, cpus_per_worker: 1}
base:
  model: {name: MODEL}
  data: {dataset: digits, image_size: 32}
  epochs: 2
space:
  optim.lr: {type: float, low: 0.01, high: 0.1, log: true}
"""


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(SpecError) as e:
        load_spec(path)
    return str(e.value)


def test_a_model_too_big_for_the_size_is_refused_naming_its_smallest(tmp_path: Path) -> None:
    path = _spec(tmp_path, SPEC.replace("MODEL", "inception_resnet_v2"))

    message = _refusal(path)
    assert "spec.yaml:6:" in message and "base.model.name" in message
    assert "'inception_resnet_v2' cannot take 32 px inputs" in message
    assert "smallest input is 75 px" in message


def test_a_searched_model_choice_is_refused_at_its_line(tmp_path: Path) -> None:
    text = SPEC.replace("MODEL", "resnet18") + (
        "  model.name: {type: categorical, choices: [resnet18, inception_resnet_v2]}\n"
    )
    message = _refusal(_spec(tmp_path, text))

    assert "spec.yaml:11:" in message and "space.model.name.choices.1" in message
    assert "smallest input is 75 px" in message


def test_the_low_end_of_a_searched_size_is_checked(tmp_path: Path) -> None:
    text = SPEC.replace("MODEL", "inception_resnet_v2").replace("image_size: 32", "image_size: 96")
    text += "  data.image_size: {type: int, low: 64, high: 128}\n"
    message = _refusal(_spec(tmp_path, text))

    assert "spec.yaml:11:" in message and "space.data.image_size.low" in message
    assert "cannot take 64 px" in message


def test_a_model_that_fits_passes(tmp_path: Path) -> None:
    text = SPEC.replace("MODEL", "inception_resnet_v2").replace("image_size: 32", "image_size: 75")
    assert load_spec(_spec(tmp_path, text)).base.model.name == "inception_resnet_v2"


def test_a_patch_that_does_not_divide_the_size_is_refused(tmp_path: Path) -> None:
    text = SPEC.replace("{name: MODEL}", "{name: vit_tiny_patch16_224, patch_size: 5}")
    message = _refusal(_spec(tmp_path, text))

    assert "spec.yaml:6:" in message and "base.model.patch_size" in message
    assert "5 px patches" in message and "one of [2, 4, 8, 16, 32]" in message


def test_a_mixer_seeing_two_resolutions_is_refused(tmp_path: Path) -> None:
    text = SPEC.replace("{name: MODEL}", "{name: mixer_s16_224, patch_size: 4}")
    text = text.replace("image_size: 32}", "image_size: 32, eval_image_size: 48}")
    message = _refusal(_spec(tmp_path, text))

    assert "spec.yaml:6:" in message and "one resolution" in message and "[32, 48]" in message


def test_a_recipe_file_is_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("model: {name: inception_resnet_v2}\ndata: {image_size: 32}\n")

    with pytest.raises(SpecError, match=r"recipe.yaml:1:.*smallest input is 75 px") as err:
        load_recipe(path)
    assert len(err.value.problems) == 1, err.value.problems  # one place: the model's name


def test_a_cached_answer_starts_no_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _spec(tmp_path, SPEC.replace("MODEL", "resnet18"))
    load_spec(path)  # probes resnet18 unless an earlier test did

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a child process was started")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(input_size, "_PROBER", input_size._Prober())
    load_spec(path)


def test_one_child_answers_every_file_of_a_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RSEARCH_CACHE", str(tmp_path / "cache"))
    prober = input_size._Prober()
    monkeypatch.setattr(input_size, "_PROBER", prober)
    started = []
    real_popen = subprocess.Popen

    def counting(*args: Any, **kwargs: Any) -> Any:
        started.append(args)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", counting)
    for model in ("resnet18", "inception_resnet_v2", "resnet34"):
        facts = input_facts([{"name": model}])
        assert json.dumps({"name": model, **dict.fromkeys(PROBED[1:])}, sort_keys=True) in facts
    prober.close()
    assert len(started) == 1


def test_a_probe_that_cannot_run_refuses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RSEARCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    monkeypatch.setattr(input_size, "_PROBER", input_size._Prober())
    path = _spec(tmp_path, SPEC.replace("MODEL", "inception_resnet_v2"))

    assert load_spec(path).base.model.name == "inception_resnet_v2"
    assert input_facts([{"name": "inception_resnet_v2"}]) == {}


def test_validate_imports_no_torch(tmp_path: Path) -> None:
    spec = ROOT / "search_spaces" / "sam_vit.yaml"
    code = (
        "import sys; from rsearch.spec import load_spec\n"
        f"load_spec({str(spec)!r})\n"
        "heavy = [m for m in ('torch', 'timm') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=os.environ, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
