"""The run directory: its layout, typed manifest, study and trial views (one owner).

The search driver writes a run directory through this package, and every command that reads
one (`resume`, `best`, `report`, tracking) reads it through `open_run`, `open_study` and
`TrialView`. Imports no Ray and no MLflow; Optuna only inside the functions that need it.
"""

from rsearch.rundir.compute import ComputeRecord, TrialSpend, read_compute, write_compute
from rsearch.rundir.extensions import (
    Extension,
    append_extension,
    new_extension,
    read_extensions,
)
from rsearch.rundir.layout import (
    COMPUTE_FILE,
    EXTENSION_PREFIX,
    EXTENSIONS,
    MANIFEST,
    RECORD_FILES,
    SPEC_AS_WRITTEN,
    SPEC_RESOLVED,
    SPEED_FILE,
    STUDY_FILE,
    TRACKING_STATE_DIR,
    TRAIN_DIR,
    create_run_dir,
    is_run_dir,
    write_atomic,
)
from rsearch.rundir.lock import LOCK_FILE, RunDirBusy, driver_lock
from rsearch.rundir.manifest import Manifest, new_manifest, read_manifest, spec_hash, write_manifest
from rsearch.rundir.run import Run, open_run
from rsearch.rundir.spec_check import SpecChange, check_run_spec, file_hash
from rsearch.rundir.study import (
    COST_ATTR,
    EXPERIMENT_ATTR,
    METRICS_ATTR,
    REJECTED_ATTR,
    SCALING_ATTR,
    TUNE_TRIAL_ID_ATTR,
    StudyNotFound,
    TrialBook,
    journal_storage,
    open_study,
)
from rsearch.rundir.trials import (
    NoCompletedTrial,
    TrialView,
    best_trials,
    trial_views,
    warm_start_trial,
)

__all__ = [
    "COMPUTE_FILE",
    "COST_ATTR",
    "ComputeRecord",
    "EXPERIMENT_ATTR",
    "EXTENSIONS",
    "EXTENSION_PREFIX",
    "Extension",
    "LOCK_FILE",
    "MANIFEST",
    "METRICS_ATTR",
    "Manifest",
    "NoCompletedTrial",
    "RECORD_FILES",
    "REJECTED_ATTR",
    "Run",
    "RunDirBusy",
    "SCALING_ATTR",
    "SPEC_AS_WRITTEN",
    "SPEC_RESOLVED",
    "SPEED_FILE",
    "STUDY_FILE",
    "SpecChange",
    "StudyNotFound",
    "TRACKING_STATE_DIR",
    "TRAIN_DIR",
    "TUNE_TRIAL_ID_ATTR",
    "TrialBook",
    "TrialSpend",
    "TrialView",
    "append_extension",
    "best_trials",
    "check_run_spec",
    "create_run_dir",
    "driver_lock",
    "file_hash",
    "is_run_dir",
    "journal_storage",
    "new_extension",
    "new_manifest",
    "open_run",
    "open_study",
    "read_compute",
    "read_extensions",
    "read_manifest",
    "spec_hash",
    "trial_views",
    "warm_start_trial",
    "write_atomic",
    "write_compute",
    "write_manifest",
]
