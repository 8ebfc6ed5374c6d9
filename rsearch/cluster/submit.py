"""A search spec made ready for the Ray Jobs API: validated, checked, staged, its command."""

from __future__ import annotations

import os
import secrets
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsearch.cluster.package import PackageMode, runtime_env, ships_rsearch, stage
from rsearch.cluster.storage import (
    check_cluster_data_path,
    check_cluster_storage,
    check_cluster_tracking,
    refuse_credentials,
)
from rsearch.errors import UserError
from rsearch.spec import SearchSpec, load_spec
from rsearch.spec.load import field_where

TRACKING_ENV = "MLFLOW_TRACKING_URI"
METADATA_SPEC = "rsearch_spec"
"""Job metadata key holding the spec's name (shown by `rsearch jobs`)."""


@dataclass(frozen=True)
class SubmitOptions:
    """What the user asked for beyond the spec file."""

    overrides: Sequence[str] = ()
    storage: str | None = None
    tracking_uri: str | None = None
    track: bool = True
    allow_local_storage: bool = False
    package: PackageMode = PackageMode.AUTO

    @property
    def flags(self) -> dict[str, str | None]:
        """The flags that set spec fields, for `load_spec`."""
        return {"--storage": self.storage, "--tracking-uri": self.tracking_uri}


@dataclass(frozen=True)
class Submission:
    """Everything `JobSubmissionClient.submit_job` needs, and what to tell the user."""

    submission_id: str
    entrypoint: str
    runtime_env: dict[str, Any]
    metadata: dict[str, str]
    spec_name: str
    ships_rsearch: bool


def prepare_submission(
    spec_path: Path,
    staging: Path,
    options: SubmitOptions,
    env: Mapping[str, str] | None = None,
) -> Submission:
    """Validate the spec, check its storage for a cluster, stage its files, build the command.

    Args:
        spec_path: The search spec.
        staging: An empty directory that becomes the job's working_dir.
        options: The submit command's options.
        env: Environment to read $MLFLOW_TRACKING_URI from (default: this process's).

    Raises:
        UserError: For any problem with the spec, its files, storage or tracking URI; nothing
            has been sent anywhere then.
    """
    env = os.environ if env is None else env
    flags = options.flags
    spec = load_spec(spec_path, options.overrides, flags)
    where = field_where(spec_path, ("storage",), options.overrides, flags)
    data_at = field_where(spec_path, ("base", "data", "path"), options.overrides, flags)
    tracking = _tracking_uri(spec, spec_path, options, env) if options.track else None
    # Everything the entrypoint carries, where it came from; first, so that no later
    # message repeats a credential.
    refuse_credentials(
        [
            (where, spec.storage),
            (data_at, spec.base.data.path),
            *([tracking] if tracking else []),
            *((f"--set {item.partition('=')[0]}", item) for item in options.overrides),
        ]
    )
    check_cluster_storage(spec.storage, where, options.allow_local_storage)
    check_cluster_data_path(spec.base.data.path, data_at)
    tracking_uri = None
    if tracking is not None:
        check_cluster_tracking(tracking[1], tracking[0], options.allow_local_storage)
        tracking_uri = tracking[1]
    staged = stage(spec_path, staging)
    ship = ships_rsearch(options.package)
    return Submission(
        submission_id=f"rsearch-{spec.name}-{secrets.token_hex(4)}",
        entrypoint=entrypoint(staged.spec, options, tracking_uri),
        runtime_env=runtime_env(staged, ship),
        metadata={METADATA_SPEC: spec.name},
        spec_name=spec.name,
        ships_rsearch=ship,
    )


def entrypoint(spec: str, options: SubmitOptions, tracking_uri: str | None) -> str:
    """The job's shell command: `rsearch run` joining the cluster it runs in.

    `python -m rsearch.cli` works whether rsearch is installed in the image or shipped as a
    py_module (a console script exists only for an installed one).
    """
    argv = ["python", "-m", "rsearch.cli", "run", spec, "--no-live", "--address", "auto"]
    if options.storage:
        argv += ["--storage", options.storage]
    if tracking_uri:
        argv += ["--tracking-uri", tracking_uri]
    if not options.track:
        argv.append("--no-track")
    for item in options.overrides:
        argv += ["--set", item]
    return shlex.join(argv)


def _tracking_uri(
    spec: SearchSpec, spec_path: Path, options: SubmitOptions, env: Mapping[str, str]
) -> tuple[str, str]:
    """Where the MLflow store the job records into was set, and its URI."""
    if spec.tracking.uri:  # the spec's, or --tracking-uri applied to it
        uri = spec.tracking.uri
        where = field_where(spec_path, ("tracking", "uri"), options.overrides, options.flags)
    elif env.get(TRACKING_ENV):
        # Passed on explicitly: the job should record where this user's MLflow points.
        uri, where = env[TRACKING_ENV], f"${TRACKING_ENV}"
    else:
        raise UserError(
            "no MLflow tracking URI: on the cluster the job would record into mlflow.db in its "
            "temporary working directory; pass --tracking-uri http://HOST:5000, set "
            "tracking.uri in the spec or $MLFLOW_TRACKING_URI, or pass --no-track"
        )
    return where, uri
