"""Reading back what a recorder wrote, through a plain MlflowClient."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run


@dataclass
class Search:
    """The runs of one recorded search."""

    client: MlflowClient
    parent: Run
    children: dict[str, Run]
    """Child runs by run name (the trial id)."""

    def history(self, trial_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of one metric of one trial, in step order."""
        run_id = self.children[trial_id].info.run_id
        points = self.client.get_metric_history(run_id, key)
        return sorted((m.step, m.value) for m in points)

    def artifact_names(self, run: Run, path: str | None = None) -> set[str]:
        """Artifact paths directly under `path` of a run."""
        return {a.path for a in self.client.list_artifacts(run.info.run_id, path)}

    def all_artifacts(self, run: Run, dst: Path) -> list[Path]:
        """Every artifact file of a run, downloaded under dst."""
        root = Path(self.client.download_artifacts(run.info.run_id, "", str(dst)))
        return sorted(p for p in root.rglob("*") if p.is_file())

    def artifact_text(self, run: Run, path: str, dst: Path) -> str:
        """A run's artifact file, downloaded to dst."""
        local = self.client.download_artifacts(run.info.run_id, path, str(dst))
        return Path(local).read_text()

    def artifact_json(self, run: Run, path: str, dst: Path) -> dict:
        """A run's JSON artifact, parsed."""
        return json.loads(self.artifact_text(run, path, dst))


def read_search(uri: str, experiment: str) -> Search:
    """The single parent run of an experiment and its children, checking there is one parent."""
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment}"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in parents]
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1, "every other run is a child of the parent"
    by_name = {r.info.run_name: r for r in children}
    assert len(by_name) == len(children), "one child run per trial"
    return Search(client, parent, by_name)
