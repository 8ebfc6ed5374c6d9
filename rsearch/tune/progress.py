"""A live rich table of the search's trials, fed by a Tune callback on the driver."""

from __future__ import annotations

from typing import Any

from ray.tune import Callback
from rich.console import Console
from rich.live import Live
from rich.table import Table

from rsearch.spec.search import SearchSpec
from rsearch.tune.optuna_searcher import PARAMS


class LiveTable(Callback):
    """Shows trial, state, searched values, epoch and objective(s) while the search runs."""

    def __init__(self, spec: SearchSpec, console: Console | None = None):
        self._spec = spec
        self._rows: dict[str, dict[str, Any]] = {}
        self._console = console or Console(stderr=True)
        self._live: Live | None = None

    def setup(
        self,
        stop: Any = None,
        num_samples: int | None = None,
        total_num_samples: int | None = None,
        **info: Any,
    ) -> None:
        """Start the live display when the experiment starts."""
        self._live = Live(self._table(), console=self._console, refresh_per_second=2)
        self._live.start()

    def _update(self, trial: Any, state: str, result: dict[str, Any] | None = None) -> None:
        row = self._rows.setdefault(trial.trial_id, {"params": trial.config.get(PARAMS, {})})
        row["state"] = state
        if result:
            row["epoch"] = result.get("epoch", row.get("epoch"))
            for o in self._spec.objective:
                if o.metric in result:
                    row[o.metric] = result[o.metric]
        if self._live is not None:
            self._live.update(self._table())

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trial, "RUNNING")

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        self._update(trial, "RUNNING", result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        epoch = self._rows.get(trial.trial_id, {}).get("epoch") or 0
        self._update(trial, "DONE" if epoch >= self._spec.budget_epochs else "STOPPED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trial, "ERROR")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.stop()
            self._live = None

    def _table(self) -> Table:
        table = Table(title=f"rsearch · {self._spec.name}", expand=False)
        table.add_column("trial")
        table.add_column("state")
        for path in self._spec.space:
            table.add_column(path, justify="right")
        table.add_column("epoch", justify="right")
        for o in self._spec.objective:
            table.add_column(f"{o.metric} ({o.direction})", justify="right")
        for trial_id, row in self._rows.items():
            params = row["params"]
            table.add_row(
                trial_id,
                row.get("state", ""),
                *(_fmt(params.get(path, "-")) for path in self._spec.space),
                _fmt(row.get("epoch", "-")),
                *(_fmt(row.get(o.metric, "-")) for o in self._spec.objective),
            )
        return table

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with the experiment; a Live display cannot be pickled.
        state = self.__dict__.copy()
        state["_live"] = None
        state["_console"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._console = Console(stderr=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
