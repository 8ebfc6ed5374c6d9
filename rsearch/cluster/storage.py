"""Whether a search's storage and MLflow store can be reached from every node of a cluster.

Pure rules on strings: no file system, network or Ray. A Ray Tune experiment on a cluster
writes checkpoints and results from every node, so its storage must be shared (an object
store URI or a mount present on all nodes); a job's driver runs in a temporary working
directory on the head node, so a relative path there is lost when the job ends.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path, PurePosixPath

from rsearch.errors import UserError
from rsearch.redact import redact_text
from rsearch.settings import TRACKING_ENV, is_uri, uri_scheme
from rsearch.spec.search import SearchSpec

_MLFLOW_FILE_SCHEMES = ("file", "sqlite")


class Reach(Enum):
    """How far a storage path or tracking URI reaches."""

    SHARED = "shared"
    """A URI every node can use (s3://, gs://, an HTTP MLflow server, a database server)."""
    ABSOLUTE = "absolute"
    """A path on the machine that uses it: shared only if it is a mount on every node."""
    RELATIVE = "relative"
    """A path relative to the working directory, which on a cluster is a job's temp dir."""


def storage_reach(storage: str) -> Reach:
    """Classify a Tune storage root: a pyarrow/fsspec URI is shared, a plain path is not."""
    if is_uri(storage):
        return Reach.SHARED
    scheme = uri_scheme(storage)
    return _path_reach(storage[len(scheme) + 3 :] if scheme else storage)


def tracking_reach(uri: str) -> Reach:
    """Classify an MLflow tracking URI: a server or database server is shared, files are not."""
    if uri == "databricks":  # MLflow's name for the workspace's hosted server
        return Reach.SHARED
    match = re.match(r"^(sqlite|file):", uri)
    scheme = uri_scheme(uri) or (match.group(1).lower() if match else None)
    if scheme is None:
        return _path_reach(uri)  # MLflow takes a bare path as a file store
    if scheme not in _MLFLOW_FILE_SCHEMES:
        return Reach.SHARED
    rest = uri[len(scheme) + 1 :]
    if scheme == "sqlite":
        # sqlite:///rel.db is relative, sqlite:////abs.db absolute (SQLAlchemy's form).
        return Reach.ABSOLUTE if rest.startswith("////") else Reach.RELATIVE
    return _path_reach(rest[2:] if rest.startswith("//") else rest)


def _path_reach(path: str) -> Reach:
    if path.startswith("~") or PurePosixPath(path).is_absolute():
        return Reach.ABSOLUTE
    return Reach.RELATIVE


def refuse_unshared_storage(
    spec: SearchSpec,
    spec_path: Path,
    overrides: Sequence[str],
    flags: Mapping[str, str | None],
    address: str | None,
    allow_local: bool,
) -> None:
    """Before a search joins a cluster on other machines: refuse storage its nodes cannot share.

    Nothing to check for an embedded Ray or the cluster this process runs in (`auto`).

    Raises:
        UserError: Naming where the storage was set (file:line, `--set` or `--storage`).
    """
    from rsearch.cluster.address import is_remote_ray_address
    from rsearch.spec.load import field_where

    if not is_remote_ray_address(address):
        return
    # Workers on other nodes write checkpoints there; MLflow stays with this driver.
    where = field_where(spec_path, ("storage",), overrides, flags)
    # Tune's controller and its callbacks run on the cluster: neither URI may carry a secret.
    tracking = spec.tracking.uri or os.environ.get(TRACKING_ENV)
    tracking_at = (
        field_where(spec_path, ("tracking", "uri"), overrides, flags)
        if spec.tracking.uri
        else f"${TRACKING_ENV}"
    )
    refuse_credentials([(where, spec.storage), (tracking_at, tracking)])
    check_cluster_storage(spec.storage, where, allow_local)


def check_cluster_storage(storage: str, where: str, allow_local: bool) -> None:
    """Refuse storage the cluster's nodes cannot all reach.

    Args:
        storage: The effective storage root.
        where: Where it was set (`spec.yaml:12:1: storage`, `--storage`), for the message.
        allow_local: The user vouches that an absolute path is shared (or one node only).

    Raises:
        UserError: For a relative path, or an absolute one without allow_local.
    """
    reach = storage_reach(storage)
    if reach is Reach.SHARED or (reach is Reach.ABSOLUTE and allow_local):
        return
    fix = (
        "use shared storage every node can reach (s3://bucket/path, gs://bucket/path, or "
        "another pyarrow/fsspec URI), or an absolute path that is a shared mount on every node "
        "together with --allow-local-storage"
    )
    if reach is Reach.RELATIVE:
        raise UserError(
            f"{where} = {storage!r} is a relative local path: on the cluster it would land in "
            f"a job's temporary working directory; {fix}"
        )
    raise UserError(
        f"{where} = {storage!r} is a local path, which the cluster's other nodes cannot "
        f"write to; {fix} (or for a single-node cluster)"
    )


def check_cluster_tracking(uri: str, where: str, allow_local: bool) -> None:
    """Refuse an MLflow store a job on the cluster would write somewhere the user never sees.

    Raises:
        UserError: For a relative file or sqlite store, or an absolute one without allow_local.
    """
    reach = tracking_reach(uri)
    if reach is Reach.SHARED or (reach is Reach.ABSOLUTE and allow_local):
        return
    fix = (
        "use an MLflow server (--tracking-uri http://HOST:5000) or a database server, or an "
        "absolute path such as sqlite:////shared/mlflow.db on a shared mount together with "
        "--allow-local-storage"
    )
    if reach is Reach.RELATIVE:
        raise UserError(
            f"{where} = {uri!r} is relative: the job's runs would land in its temporary "
            f"working directory on the cluster; {fix}"
        )
    raise UserError(f"{where} = {uri!r} is a file on one machine; {fix}")


CREDENTIALS_HELP = (
    "give the cluster its own credentials instead: environment variables in the job's "
    "runtime env or the cluster's config (MLFLOW_TRACKING_USERNAME and "
    "MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN, for MLflow; AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, or GOOGLE_APPLICATION_CREDENTIALS, for storage), a Kubernetes "
    "secret, or an instance role (docs/deploy.md, Credentials)"
)


def refuse_credentials(settings: Sequence[tuple[str, str | None]]) -> None:
    """Refuse settings that carry a credential before they are sent to a cluster.

    What a job is given (its command line, its metadata, the spec it ships) is shown to
    everyone with access to the cluster: `rsearch status`, the dashboard, `ps` on the head.

    Args:
        settings: (where it was set, its value) pairs; None values are skipped.

    Raises:
        UserError: Naming the first setting with a credential, the credential masked.
    """
    for where, value in settings:
        if value and redact_text(value) != value:
            raise UserError(
                f"{where} = {redact_text(value)!r} carries a credential, which everyone with "
                f"access to the cluster would see; {CREDENTIALS_HELP}"
            )


def check_cluster_data_path(path: str | None, where: str) -> None:
    """Refuse a relative dataset directory: a job's trials run in directories of Ray's choosing.

    Data is not shipped with the job (it may be large); an absolute path must exist on every
    node that trains, which only the user can vouch for. An object-store URI (shards in
    `s3://...`) is read by every node from the store itself.

    Raises:
        UserError: For a relative path.
    """
    if path is None or is_uri(path) or _path_reach(path) is Reach.ABSOLUTE:
        return
    raise UserError(
        f"{where} = {path!r} is relative: on the cluster the trials run in Ray's working "
        "directories, where it does not exist; give an absolute path present on every node"
    )
