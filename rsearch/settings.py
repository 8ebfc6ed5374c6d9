"""Where a search's files and records go: the one resolver of each setting.

Every layer asks here instead of re-deriving: whether a string is a URI, where run
directories are created (the storage root), and which MLflow store a search records into
(the tracking URI). The `--storage` and `--tracking-uri` flags are applied while the spec is
loaded (as `--set storage=...` would be), so the spec a search holds already carries them;
the functions here turn that spec value into the concrete place. Pure string and path
rules: no file system access beyond `Path.resolve`, no heavy imports. A run directory records
these settings with their credentials masked (`rsearch.redact`); `usable_storage_uri` and
`usable_tracking_uri` turn a recorded value back into one that can be used.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rsearch.errors import UserError
from rsearch.redact import is_masked, redact_text, unmask, without_credentials

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
LOCAL_SCHEMES = ("file", "local")
"""URI schemes that still name a path on this machine."""

DEFAULT_LOCAL_ROOT = "./rsearch-runs"
"""Root of the local control directories of searches whose storage is a URI."""
DEFAULT_DB = "mlflow.db"
"""The default MLflow store: a SQLite file in the working directory the search starts in."""
TRACKING_ENV = "MLFLOW_TRACKING_URI"


def uri_scheme(text: str) -> str | None:
    """The lower-case scheme of `scheme://...`, None for a plain path."""
    match = _SCHEME.match(text)
    return match.group(1).lower() if match else None


def is_uri(text: str) -> bool:
    """Whether text names a remote filesystem: any `scheme://` except file:// and local://."""
    scheme = uri_scheme(text)
    return scheme is not None and scheme not in LOCAL_SCHEMES


def local_path(text: str) -> Path:
    """A local storage setting as an absolute path (`file://` and `local://` accepted)."""
    path = urllib.parse.urlparse(text).path if uri_scheme(text) in LOCAL_SCHEMES else text
    return Path(path).expanduser().resolve()


@dataclass(frozen=True)
class StorageRoot:
    """Where a search's run directories go.

    Attributes:
        local: The directory run directories are created in on this machine (for a URI
            storage, the root of the local control directories).
        remote: The URI Tune's experiments and Train checkpoints go under, None when local.
    """

    local: Path
    remote: str | None = None


def resolve_storage(storage: str, local_dir: str | None = None) -> StorageRoot:
    """The storage root of a search from its spec's (flag-applied) `storage` setting.

    Args:
        storage: A local path or a URI (s3://, gs://, any pyarrow URI with its query).
        local_dir: With a URI storage: the root of the local control directories
            (default DEFAULT_LOCAL_ROOT).
    """
    if is_uri(storage):
        return StorageRoot(local_path(local_dir or DEFAULT_LOCAL_ROOT), storage)
    return StorageRoot(local_path(storage))


def resolve_tracking_uri(spec_uri: str | None = None, cwd: Path | None = None) -> str:
    """The MLflow store a search records into, absolute.

    Precedence: the `--tracking-uri` flag (applied to the spec's `tracking.uri` while the
    spec loads, so it arrives here as spec_uri), the spec, $MLFLOW_TRACKING_URI, then
    `sqlite:///<cwd>/mlflow.db`. Relative SQLite paths are made absolute, so the driver, a
    resumed driver, `rsearch report` and the UI started anywhere use the same file.

    Args:
        spec_uri: The spec's `tracking.uri` (with any flag applied), or an explicit URI.
        cwd: The directory relative paths and the default store are taken from.
    """
    base = (cwd or Path.cwd()).resolve()
    uri = spec_uri or os.environ.get(TRACKING_ENV) or f"sqlite:///{base / DEFAULT_DB}"
    path = sqlite_path(uri)
    if path is not None and not path.is_absolute():
        return f"sqlite:///{base / path}"
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite://` URI (relative as written), None for other stores."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != "sqlite" or len(parsed.path) < 2:  # `sqlite://` is an in-memory store
        return None
    # sqlite:///rel.db parses to path "/rel.db", sqlite:////abs.db to "//abs.db".
    return Path(urllib.parse.unquote(parsed.path[1:]))


def uri_join(base: str, *parts: str) -> str:
    """Append path parts to a local path or a URI, keeping the URI's query.

    `uri_join("s3://b/runs?scheme=http", "x")` is `s3://b/runs/x?scheme=http`.
    """
    if not is_uri(base):
        return str(Path(base, *parts))
    parsed = urllib.parse.urlparse(base)
    path = PurePosixPath(parsed.netloc + parsed.path, *parts)
    return with_fs_path(base, str(path))


def with_fs_path(uri: str, path: str) -> str:
    """The URI of another path on the same filesystem as uri (same scheme and query)."""
    parsed = urllib.parse.urlparse(uri)
    return parsed._replace(netloc=path.strip("/"), path="").geturl()


TRACKING_CREDENTIAL_ENVS = (
    ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"),
    ("MLFLOW_TRACKING_TOKEN",),
)
"""MLflow's own ways to give its client a credential (any one complete group will do)."""


def usable_storage_uri(recorded: str) -> str:
    """A storage URI as a run directory records it (credentials masked), made usable.

    The process that masked it gets the real one back; any other gets it without its
    credentials, which pyarrow then takes from the environment (AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, an instance role), as on a cluster.

    Args:
        recorded: The manifest's storage root or experiment URI.
    """
    real = unmask(recorded)
    return without_credentials(real) if is_masked(real) else real


def usable_tracking_uri(recorded: str, env: Mapping[str, str] | None = None) -> str:
    """An MLflow tracking URI as a run directory records it (credentials masked), made usable.

    The process that masked it gets the real one back; any other takes $MLFLOW_TRACKING_URI
    when that is the same URI with its credentials, or the URI without them when MLflow's
    MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN are set. A masked URI is never
    used as if it were real.

    Args:
        recorded: The manifest's tracking URI.
        env: Where to look for the credential (default: this process's environment).

    Raises:
        UserError: When the credential the URI had is nowhere to be found.
    """
    real = unmask(recorded)
    if not is_masked(real):
        return real
    env = os.environ if env is None else env
    given = env.get(TRACKING_ENV, "")
    if given and not is_masked(given) and redact_text(given) == recorded:
        return given
    if any(all(env.get(name) for name in group) for group in TRACKING_CREDENTIAL_ENVS):
        return without_credentials(recorded)
    raise UserError(
        f"the MLflow store {recorded} needs the credential that was masked out of the run "
        f"directory: set ${TRACKING_ENV} to the URI with its credential, or give MLflow "
        "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
    )
