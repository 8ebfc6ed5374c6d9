"""Hostile and malformed specs and recipes: each is refused at once, cleanly, writing nothing.

The corpus lives in tests/reliability/hostile/: one file per case, whose `# expect:` line (the
first line, after a BOM if any) gives a fragment of the error and the `file:line` it must name,
`FRAGMENT @ FILE:LINE` (FILE relative to the corpus folder). Files whose name holds "recipe" go
through `rsearch train`, the others through `rsearch validate`. Cases that cannot be files in a
repository (a FIFO, /dev/zero, a 2 MB file, symlink loops, an `extends` fan-out) are made here.

Every case must exit 2, print its fragment at its `file:line`, show no traceback, and leave
the working directory and RSEARCH_CACHE as they were. The bombs also run through the real
command line in a subprocess with a hang guard, and a few through `rsearch run`, which must not
import Ray, MLflow or torch.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rsearch.cli import app
from rsearch.spec.names import cache_dir, timm_names
from tests.reliability.figures import record

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = Path(__file__).parent / "hostile"
HANG_GUARD_S = 20.0
"""Subprocess timeout: far above the second each case takes, so only a hang trips it."""

GOOD_SPEC = """\
name: hostile
objective: {metric: val_top1}
search: {algorithm: tpe, num_trials: 4}
base:
  model: {name: resnet18}
  data: {dataset: digits, image_size: 32}
  epochs: 2
space:
  optim.lr: {type: float, low: 0.01, high: 0.1, log: true}
"""

BOMB_VALUE = "{a: &a [1,1,1,1,1,1,1,1,1,1], " + ", ".join(
    f"{c}: &{c} [{','.join(['*' + p] * 10)}]" for p, c in zip("abcd", "bcde", strict=True)
)
"""A one-line --set value whose aliases expand to 100,000 values."""

SET_CASES = [
    ("description=&a [*a]", "recursive alias *a"),
    (f"description={BOMB_VALUE}}}", "values in all with aliases expanded"),
    ("search.num_trials=" + "9" * 5000, "integer longer than 4300 digits"),
    ('storage="runs\\0x"', "a string holds a NUL character"),
    ("base.epochs=.inf", ".inf is not a finite number"),
    ("description=" + "[" * 5000, "nesting depth"),
]
"""(--set value, fragment of its error): the same guards hold for values given on the command
line (`rsearch show` reads them as every verb does)."""


@dataclass(frozen=True)
class Case:
    """One hostile input and what its refusal must say."""

    name: str
    path: Path
    fragment: str
    where: str | None  # "FILE:LINE" the message must name, FILE as shown by the CLI
    recipe: bool


def _corpus_case(path: Path) -> Case:
    first = path.read_bytes().removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode()
    assert first.startswith("# expect: "), path
    fragment, _, where = first.removeprefix("# expect: ").rpartition(" @ ")
    file, _, line = where.rpartition(":")
    shown = HOSTILE / file
    return Case(path.name, path, fragment, f"{shown}:{line}:", "recipe" in path.name)


def _made_cases(folder: Path) -> list[Case]:
    """The cases a repository cannot hold, made in folder."""
    folder.mkdir()
    cases: list[tuple[str, Path, str, bool]] = []

    def case(name: str, path: Path, fragment: str, recipe: bool = False) -> None:
        cases.append((name, path, fragment, recipe))

    (folder / "empty.yaml").write_bytes(b"")
    case("zero-bytes", folder / "empty.yaml", "file is empty")
    big = folder / "big.yaml"
    big.write_text(GOOD_SPEC + "description: " + "x" * (2 << 20) + "\n")
    case("2-MB-spec", big, "file is larger than 1 MiB")
    big_recipe = folder / "big-recipe.yaml"
    big_recipe.write_text("epochs: 2\n" + "# padding\n" * 220_000)
    case("2-MB-recipe", big_recipe, "file is larger than 1 MiB", recipe=True)
    os.mkfifo(folder / "fifo.yaml")
    case("fifo", folder / "fifo.yaml", "not a regular file")
    (folder / "dir.yaml").mkdir()
    case("directory", folder / "dir.yaml", "not a regular file")
    case("dev-zero", Path("/dev/zero"), "not a regular file")
    (folder / "zero.yaml").symlink_to("/dev/zero")
    case("symlink-to-dev-zero", folder / "zero.yaml", "not a regular file", recipe=True)
    (folder / "loop-a.yaml").symlink_to(folder / "loop-b.yaml")
    (folder / "loop-b.yaml").symlink_to(folder / "loop-a.yaml")
    case("symlink-loop", folder / "loop-a.yaml", "Too many levels of symbolic links")
    case("missing", folder / "nowhere.yaml", "file not found")
    for i in range(40):  # each file extends the next twice: 2^40 reads if nothing stops it
        nxt = f"fan{i + 1}.yaml"
        (folder / f"fan{i}.yaml").write_text(f"extends: [{nxt}, {nxt}]\nepochs: 2\n")
        (folder / f"chain{i}.yaml").write_text(f"extends: chain{i + 1}.yaml\n")
    (folder / "fan40.yaml").write_text("epochs: 2\n")
    (folder / "chain40.yaml").write_text("epochs: 2\n")
    case("extends-fan-out", folder / "fan0.yaml", "extends reads more than 32 files", recipe=True)
    case("extends-chain-of-40", folder / "chain0.yaml", "extends reads more than 32", recipe=True)
    (folder / "loop-extends.yaml").write_text("extends: loop-a.yaml\nepochs: 2\n")
    case("extends-symlink-loop", folder / "loop-extends.yaml", "Symlink loop", recipe=True)
    return [Case(n, p, f, None, r) for n, p, f, r in cases]


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under folder with its size and modification time."""
    return {
        str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in folder.rglob("*")
    }


def _argv(case: Case) -> list[str]:
    if case.recipe:
        return ["train", str(case.path), "--no-progress", "--metrics", "metrics.json"]
    return ["validate", str(case.path)]


def _problems(case: Case, code: int, stdout: str, stderr: str) -> list[str]:
    """What is wrong with how the CLI refused case (empty when it refused it properly)."""
    wrong = []
    if code != 2:
        wrong.append(f"exit {code}, not 2")
    if "Traceback" in stdout + stderr or "Error:" in stdout + stderr.replace("error:", ""):
        wrong.append("a traceback or exception dump")
    if case.fragment not in stderr:
        wrong.append(f"no {case.fragment!r}")
    if case.where and case.where not in stderr:
        wrong.append(f"no {case.where!r}")
    return [f"{case.name}: {w}\n    {stderr.strip()[:300]}" for w in wrong]


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory; RSEARCH_CACHE already holds timm's names (as after a first
    use), so that anything a refused input writes there shows."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    timm_names()
    return cwd


def test_every_hostile_input_is_refused_cleanly(sandbox: Path, tmp_path: Path) -> None:
    corpus = [_corpus_case(p) for p in sorted(HOSTILE.glob("*.yaml"))]
    cases = corpus + _made_cases(tmp_path / "made")
    assert len(corpus) >= 60
    cache_before, runner = _snapshot(cache_dir()), CliRunner()
    wrong: list[str] = []
    seconds: list[float] = []
    for case in cases:
        started = time.perf_counter()
        res = runner.invoke(app, _argv(case))
        seconds.append(time.perf_counter() - started)
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            wrong.append(f"{case.name}: raised {res.exception!r}")
        wrong += _problems(case, res.exit_code, res.stdout, res.stderr)
        if written := _snapshot(sandbox):
            wrong.append(f"{case.name}: wrote {sorted(written)} in the working directory")
    assert _snapshot(cache_dir()) == cache_before, "RSEARCH_CACHE changed"
    assert not wrong, "\n".join(wrong)
    record(
        "hostile specs and recipes",
        "rsearch validate / train on malformed and hostile files, each refused",
        len(cases),
        "nothing (exit 2, file:line, no traceback, nothing written)",
        files=len(corpus),
        made=len(cases) - len(corpus),
        specs=sum(not c.recipe for c in cases),
        recipes=sum(c.recipe for c in cases),
        p50_s=round(statistics.median(seconds), 4),
        max_s=round(max(seconds), 4),
    )


@pytest.mark.parametrize(("setting", "fragment"), SET_CASES, ids=lambda v: str(v)[:24])
def test_hostile_set_values_are_refused(
    sandbox: Path, tmp_path: Path, setting: str, fragment: str
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD_SPEC)
    res = CliRunner().invoke(app, ["show", str(spec), "--set", setting])
    case = Case(setting[:24], spec, fragment, "--set:1:1:", False)
    assert not _problems(case, res.exit_code, res.stdout, res.stderr)
    assert not _snapshot(sandbox)


def _cli(
    args: list[str], cwd: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "rsearch.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    return done, time.perf_counter() - started


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_bombs_through_the_real_command_line(sandbox: Path, tmp_path: Path) -> None:
    names = ["62-", "63-", "64-", "65-", "66-", "67-", "68-", "73-", "77-"]
    bombs = [p for p in sorted(HOSTILE.glob("*.yaml")) if p.name[:3] in names]
    os.mkfifo(tmp_path / "fifo.yaml")
    paths = [str(p) for p in bombs] + ["/dev/zero", str(tmp_path / "fifo.yaml")]
    done, seconds = _cli(["validate", *paths], sandbox, _env())
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    for path in paths:
        assert f"{path}:" in done.stderr, path
    assert f"{len(paths)} of {len(paths)} file(s) invalid" in done.stderr
    assert not _snapshot(sandbox)
    record(
        "alias bombs, deep nesting, devices",
        "one `rsearch validate` process over every bomb, /dev/zero and a FIFO",
        len(paths),
        "nothing (each refused at its line)",
        process_s=round(seconds, 2),
    )


# Each module imported by the run, written where the test reads it: a refused spec must have
# stopped `rsearch run` before Ray, MLflow or torch were imported.
_IMPORTS_AT_EXIT = """\
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from rsearch.cli import main
main()
"""


@pytest.mark.parametrize(
    "name",
    ["52-name-path-traversal.yaml", "63-billion-laughs.yaml", "74-nul-escape-in-storage.yaml"],
)
def test_run_refuses_before_anything_starts(sandbox: Path, tmp_path: Path, name: str) -> None:
    imports = tmp_path / "imports.json"
    case = _corpus_case(HOSTILE / name)
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS_AT_EXIT, str(imports), "run", str(case.path), "--no-live"],
        cwd=sandbox,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    assert not _problems(case, done.returncode, done.stdout, done.stderr)
    assert not _snapshot(sandbox)  # no run directory, no mlflow.db
    imported = {m.split(".")[0] for m in json.loads(imports.read_text())}
    assert not imported & {"ray", "mlflow", "torch"}
