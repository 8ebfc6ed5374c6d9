"""The user errors every verb that talks to a cluster's dashboard shares (jobs, status, logs,
stop): each test file calls these with its own command line."""

from __future__ import annotations

import time
from pathlib import Path

from tests.cli.helpers import fails_cleanly
from tests.cluster.helpers import closed_port


def unreachable_address_fails_fast(*verb: str) -> None:
    """An address nothing listens on: named in the error, in seconds (the probe comes first)."""
    url = f"http://127.0.0.1:{closed_port()}"
    start = time.monotonic()
    fails_cleanly(*verb, "--address", url, expect=f"cannot reach the Ray dashboard at {url}")
    assert time.monotonic() - start < 30  # a hang would mean the probe is not first


def missing_address_names_the_flag(*verb: str) -> None:
    """No --address and no $RAY_ADDRESS: the flag to pass is named."""
    fails_cleanly(*verb, expect="no cluster address: pass --address http://HEAD:8265")


def missing_token_file(tmp_path: Path, *verb: str) -> None:
    """A --token-file that does not exist is named with where it came from."""
    url = f"http://127.0.0.1:{closed_port()}"
    missing = tmp_path / "nope.token"
    fails_cleanly(
        *verb,
        "--address",
        url,
        "--token-file",
        missing,
        expect=f"token file {missing} (from --token-file) does not exist",
    )
