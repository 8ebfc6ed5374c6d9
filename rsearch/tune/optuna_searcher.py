"""A Ray Tune Searcher over an Optuna study that tells early-stopped trials as PRUNED.

Ray's stock OptunaSearch tells a trial a scheduler stopped as COMPLETE with its last,
low-fidelity value, which biases TPE toward whatever looks good after one epoch. Here a trial
that stopped before its budget is told PRUNED, with its per-epoch values reported as
intermediate values, as Optuna's own pruners do.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from ray.tune.search import Searcher

from rsearch.rundir import (
    EXPERIMENT_ATTR,
    METRICS_ATTR,
    REJECTED_ATTR,
    TUNE_TRIAL_ID_ATTR,
    TrialBook,
)
from rsearch.spec.metric_names import is_summary
from rsearch.spec.scaling import recipe_params
from rsearch.spec.search import SearchSpec
from rsearch.tune.budget import budget_check
from rsearch.tune.disk_full import stop_if_disk_full
from rsearch.tune.kill_points import kill_point
from rsearch.tune.searchers import create_study
from rsearch.tune.space import propose

if TYPE_CHECKING:
    import optuna


PARAMS = "params"
"""Key of the searched values in a Tune trial's config."""
OPTUNA_TRIAL = "optuna_trial"
"""Key of the Optuna trial number in a trial's config, so Tune callbacks know which study
trial a Tune trial runs (its MLflow child run follows the study trial). Set by `suggest` and
`initial_population` (PBT); PBT's exploit copies a donor's whole config, number included, so
a PBT trial's own number is the one it first started with."""


class OptunaSearcher(Searcher):
    """Proposes trials from an Optuna study persisted in the run directory."""

    def __init__(
        self,
        spec: SearchSpec,
        study_file: Path,
        budget_epochs: int,
        trials: int | None = None,
        extension: int = 0,
    ):
        """Create the searcher.

        Args:
            spec: The search.
            study_file: The run's Optuna journal file (created when missing).
            budget_epochs: Epochs a trial trains when nobody stops it.
            trials: Trials this searcher proposes (its Tune experiment's); default the
                search's num_trials. An extension proposes only the trials it adds, on top
                of the study's earlier trials, which its sampler sees.
            extension: 0 for the search as started, k for its k-th extension (its sampler
                is seeded apart: `rsearch.tune.searchers.make_sampler`).
        """
        objective = spec.objective[0]
        super().__init__(metric=objective.metric, mode=objective.direction)
        self._spec = spec
        self._study_file = study_file
        self._budget = budget_epochs
        self._trials = spec.search.num_trials if trials is None else trials
        self._extension = extension
        self._numbers: dict[str, int] = {}  # Tune trial id -> Optuna trial number
        self._last_epoch: dict[str, int] = {}
        self._counted_elsewhere = False  # see _count_finished_elsewhere; not pickled
        self._restored = False  # unpickled by a resumed experiment: its study must exist
        self._study: optuna.Study | None = None
        self._book: TrialBook | None = None

    @property
    def study(self) -> optuna.Study:
        """The Optuna study (loaded lazily: the searcher is pickled with the experiment)."""
        if self._study is None:
            self._study = create_study(
                self._spec, self._study_file, self._extension, must_exist=self._restored
            )
        return self._study

    @property
    def book(self) -> TrialBook:
        """Bookkeeping on the study's trials by number (no Trial objects built)."""
        if self._book is None:
            self._book = TrialBook(self.study)
        return self._book

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_study"] = state["_book"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A searcher pickled by an rsearch before extensions (an interrupted run resumed).
        state.setdefault("_trials", state["_spec"].search.num_trials)
        state.setdefault("_extension", 0)
        state["_counted_elsewhere"] = False  # an unpickled searcher counts again
        state["_restored"] = True
        self.__dict__.update(state)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """Ask Optuna for the next configuration, or FINISHED when the budget is spent.

        Proposals the scaling strategy or constraints refuse are told PRUNED and skipped
        here, so they never become Tune trials and never train.
        """
        if trial_id in self._numbers:  # a restored trial keeps its configuration
            return None
        orphan = self._orphan()
        if orphan is not None:
            self._adopt(trial_id, orphan)
            params = recipe_params(orphan.params, self._spec.scaling, self._spec.base)
            return {PARAMS: params, OPTUNA_TRIAL: orphan.number}
        self._count_finished_elsewhere()
        if len(self._numbers) >= self._trials:
            return Searcher.FINISHED  # type: ignore[return-value]  # Tune's own sentinel
        import optuna

        trial, params = propose(self.study, self._spec, budget_check(self._spec))
        refusal = self._admission(trial_id, params)
        if refusal is not None:
            # Told like a refused proposal: on record in the study, never trained.
            trial.set_user_attr(REJECTED_ATTR, refusal)
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return Searcher.FINISHED  # type: ignore[return-value]
        self._numbers[trial_id] = trial.number
        trial.set_user_attr(TUNE_TRIAL_ID_ATTR, trial_id)
        trial.set_user_attr(EXPERIMENT_ATTR, self._extension)
        kill_point("asked")
        return {PARAMS: params, OPTUNA_TRIAL: trial.number}

    def _count_finished_elsewhere(self) -> None:
        """Count this experiment's trials the study finished but Tune's snapshot lacks.

        Trials can finish within seconds of each other: a driver killed before Tune's next
        experiment snapshot leaves the study holding finished trials that the restored Tune
        experiment (and this searcher's snapshot) never heard of. They count toward the
        experiment's trials, so the resumed search proposes only the missing ones. Once per
        searcher process (or restore) is enough: every trial it proposes is in its mapping.
        """
        if self._counted_elsewhere:
            return
        self._counted_elsewhere = True
        known = set(self._numbers.values())
        for frozen in self.study.get_trials(deepcopy=False):
            tune_id = frozen.user_attrs.get(TUNE_TRIAL_ID_ATTR)
            if (
                tune_id is not None
                and frozen.state.is_finished()
                and frozen.number not in known
                and frozen.user_attrs.get(EXPERIMENT_ATTR, 0) == self._extension
                and REJECTED_ATTR not in frozen.user_attrs
            ):
                self._numbers[tune_id] = frozen.number

    def _admission(self, trial_id: str, params: dict[str, Any]) -> str | None:
        """None when the search's compute budget admits the trial, else why not."""
        if self._spec.search.budget is None:
            return None
        from rsearch.tune.ledger_hooks import ledger_for

        return ledger_for(self._study_file.parent, self._spec).admit(trial_id, params)

    def _orphan(self) -> optuna.trial.FrozenTrial | None:
        """A trial Optuna handed out that the restored Tune experiment never heard of.

        A driver killed between `ask` and Tune's next experiment snapshot leaves one behind;
        giving it to the next Tune trial keeps the search at exactly its trials. The new Tune
        trial trains it from scratch, and its config names the study trial, so its MLflow
        child run replaces the one the lost Tune trial may have made.
        """
        import optuna

        known = set(self._numbers.values())
        for frozen in self.study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)
        ):
            if frozen.number not in known and frozen.params:
                return frozen
        return None

    def _adopt(self, trial_id: str, orphan: optuna.trial.FrozenTrial) -> None:
        self._numbers[trial_id] = orphan.number
        self._set_attr(trial_id, TUNE_TRIAL_ID_ATTR, trial_id)
        self._set_attr(trial_id, EXPERIMENT_ATTR, self._extension)

    def initial_population(self, n: int) -> list[dict[str, Any]]:
        """Configurations for n trials proposed up front (PBT, which takes no searcher).

        Each carries its Optuna trial number under OPTUNA_TRIAL, so a Tune callback can map
        Tune's trials back to Optuna's (see `adopt`).
        """
        configs = []
        for _ in range(n):
            trial, params = propose(self.study, self._spec, budget_check(self._spec))
            configs.append({PARAMS: params, OPTUNA_TRIAL: trial.number})
        return configs

    def adopt(self, trial_id: str, number: int) -> None:
        """Bind a Tune trial to the Optuna trial proposed for it by initial_population.

        The first binding holds: PBT copies a donor's whole config, proposal number included,
        into the trial that exploits it. The study keeps the binding (a user attribute), so
        it survives a resumed run too.
        """
        if trial_id in self._numbers:
            return
        for frozen in self.study.get_trials(deepcopy=False):
            if frozen.user_attrs.get(TUNE_TRIAL_ID_ATTR) == trial_id:
                self._numbers[trial_id] = frozen.number
                return
        self._numbers[trial_id] = number
        self._set_attr(trial_id, TUNE_TRIAL_ID_ATTR, trial_id)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Record the epoch's objective as an intermediate value (single objective only)."""
        epoch = int(result.get("epoch", 0))
        if trial_id not in self._numbers or epoch <= self._last_epoch.get(trial_id, 0):
            return  # a resumed trial may repeat an epoch Optuna already holds
        self._last_epoch[trial_id] = epoch
        value = result.get(self.metric)
        if len(self._spec.objective) == 1 and _finite(value):
            import optuna

            try:
                self.book.set_intermediate_value(self._numbers[trial_id], epoch, float(value))
            except optuna.exceptions.UpdateFinishedTrialError:
                # Tune's experiment snapshot can lag the study: after a resume it reruns a
                # trial the study already holds as finished, whose record stays as it was.
                pass

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Tell Optuna how the trial ended: COMPLETE, PRUNED (stopped early) or FAIL."""
        import optuna

        number = self._numbers.get(trial_id)
        if number is None or self.book.state(number).is_finished():
            return
        if error:
            # Not a FAIL when the disk filled: the search stops, and resume runs it again.
            stop_if_disk_full(self._study_file.parent)
        result = result or {}
        # Tune withholds from the searcher the result on which a scheduler stops a trial;
        # it arrives here, and belongs to the trial's learning curve too.
        self.on_trial_result(trial_id, result)
        # One attribute, not one per metric: each is a write to the study's journal.
        summary = {k: float(v) for k, v in result.items() if is_summary(k) and _finite(v)}
        self._set_attr(trial_id, METRICS_ATTR, summary)
        epoch = max(int(result.get("epoch", 0)), self._last_epoch.get(trial_id, 0))
        values = [result.get(o.metric) for o in self._spec.objective]
        if error or not all(_finite(v) for v in values):
            self.study.tell(number, state=optuna.trial.TrialState.FAIL)
        elif epoch < self._budget:
            self.study.tell(number, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(number, values=[float(v) for v in values])  # type: ignore[arg-type]

    def _set_attr(self, trial_id: str, key: str, value: Any) -> None:
        self.book.set_user_attr(self._numbers[trial_id], key, value)

    def save(self, checkpoint_path: str) -> None:
        """Persist the trial mapping (the study itself lives in its own storage)."""
        with open(checkpoint_path, "wb") as f:
            pickle.dump({"numbers": self._numbers, "last_epoch": self._last_epoch}, f)

    def restore(self, checkpoint_path: str) -> None:
        """Reload the trial mapping written by save."""
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        self._numbers = state["numbers"]
        self._last_epoch = state["last_epoch"]
        self._counted_elsewhere = False


def _finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
