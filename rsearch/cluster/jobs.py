"""Ray Jobs API calls with errors a user can act on: submit, list, status, logs, stop."""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.client import HTTPMessage
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rsearch.cluster.address import DashboardAddress, HostScope, check_reachable, host_scope
from rsearch.cluster.auth import (
    HOME_TOKEN_IS_LOCAL,
    HOW_TO_SUPPLY,
    Token,
    check_transport,
    home_token_file,
)
from rsearch.errors import UserError

if TYPE_CHECKING:
    from ray.job_submission import JobDetails, JobSubmissionClient

KNOWN_IDS_SHOWN = 5
"""How many known job ids an unknown-id error lists."""


class Jobs:
    """A connection to one cluster's Jobs API (reachability and the token checked on entry)."""

    def __init__(
        self,
        address: DashboardAddress,
        token: Token | None,
        timeout_s: float = 10.0,
        allow_http: bool = False,
    ):
        check_reachable(address, timeout_s=min(timeout_s, 5.0))
        warning = check_transport(address, token, allow_http)
        if warning:
            print(warning, file=sys.stderr)
        _check_auth(address, token, timeout_s)
        self.address = address
        self.client = _client(address, token)

    def submit(
        self,
        entrypoint: str,
        runtime_env: dict[str, Any],
        submission_id: str,
        metadata: dict[str, str],
    ) -> str:
        """Submit a job (uploading its working_dir and py_modules); returns its id."""
        try:
            return self.client.submit_job(
                entrypoint=entrypoint,
                runtime_env=runtime_env,
                submission_id=submission_id,
                metadata=metadata,
            )
        except (RuntimeError, ValueError) as e:
            raise UserError(f"the cluster at {self.address.url} refused the job: {e}") from None

    def list(self) -> list[JobDetails]:
        """Every job the cluster knows, oldest first."""
        with self._api_errors():
            jobs = self.client.list_jobs()
        return sorted(jobs, key=lambda j: j.start_time or 0)

    def info(self, job_id: str) -> JobDetails:
        """A job's details.

        Raises:
            UserError: When the cluster knows no such job (a few known ids are listed).
        """
        try:
            return self.client.get_job_info(job_id)
        except RuntimeError as e:
            if "404" not in str(e) and "does not exist" not in str(e):
                raise UserError(f"the Jobs API at {self.address.url} failed: {e}") from None
        raise UserError(self._unknown(job_id)) from None

    def logs(self, job_id: str) -> str:
        """Everything the job has printed so far."""
        self.info(job_id)
        with self._api_errors():
            return self.client.get_job_logs(job_id)

    def follow(self, job_id: str, write: Callable[[str], object]) -> None:
        """Stream the job's output to write until the job ends."""
        self.info(job_id)

        async def tail() -> None:
            async for chunk in self.client.tail_job_logs(job_id):
                write(chunk)

        with self._api_errors():
            asyncio.run(tail())

    def stop(self, job_id: str) -> bool:
        """Ask the job to stop; False when it had already ended."""
        self.info(job_id)
        with self._api_errors():
            return bool(self.client.stop_job(job_id))

    def wait(self, job_id: str, poll_s: float = 1.0) -> JobDetails:
        """Block until the job reaches SUCCEEDED, FAILED or STOPPED; returns its details."""
        while True:
            info = self.info(job_id)
            if info.status.is_terminal():
                return info
            time.sleep(poll_s)

    @contextmanager
    def _api_errors(self) -> Iterator[None]:
        """A failing Jobs API call (a 5xx, a dropped connection) as a message, not a traceback."""
        try:
            yield
        except (RuntimeError, ConnectionError) as e:
            raise UserError(f"the Jobs API at {self.address.url} failed: {e}") from None

    def _unknown(self, job_id: str) -> str:
        known = [j.submission_id for j in reversed(self.list()) if j.submission_id]
        if not known:
            return f"no job {job_id!r} on the cluster at {self.address.url} (it has no jobs)"
        shown = ", ".join(known[:KNOWN_IDS_SHOWN])
        more = f" and {len(known) - KNOWN_IDS_SHOWN} more" if len(known) > KNOWN_IDS_SHOWN else ""
        return (
            f"no job {job_id!r} on the cluster at {self.address.url}; newest jobs: {shown}{more} "
            "(`rsearch jobs` lists them all)"
        )


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but sends the Authorization header only back to its own origin.

    urllib copies every header onto a redirect, so a proxy or a compromised dashboard could
    send the token on to any host. (The Jobs client, requests, drops it by itself.)
    """

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            new.remove_header("Authorization")
        return new


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _check_auth(address: DashboardAddress, token: Token | None, timeout_s: float) -> None:
    """Ask the dashboard's version endpoint, to tell a missing token from a wrong one."""
    request = urllib.request.Request(
        f"{address.url}/api/version", headers=token.headers() if token else {}
    )
    opener = urllib.request.build_opener(_SameOriginRedirects)
    try:
        with opener.open(request, timeout=timeout_s):
            return
    except urllib.error.HTTPError as e:
        status = e.code
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise UserError(f"no answer from the Ray dashboard at {address.url}: {reason}") from None
    if status == 401 and token is None:
        raise UserError(
            f"the Ray cluster at {address.url} requires an auth token (HTTP 401) and none was "
            f"found; {HOW_TO_SUPPLY}{_home_token_note(address)}"
        )
    if status in (401, 403):
        source = token.source if token else "no source"
        why = "HTTP 403: wrong token" if status == 403 else "HTTP 401"
        raise UserError(
            f"the Ray cluster at {address.url} rejected the auth token from {source} "
            f"({why}); {HOW_TO_SUPPLY}"
        )
    # Anything else (a proxy's 404, a 5xx) is for the Jobs client to report in its words.


def _home_token_note(address: DashboardAddress) -> str:
    """Why ~/.ray/auth_token was not sent, when it exists and the head is elsewhere."""
    if not home_token_file().is_file() or host_scope(address.host) is HostScope.LOOPBACK:
        return ""
    return f" ({HOME_TOKEN_IS_LOCAL}; for {address.host} name its token explicitly)"


def _client(address: DashboardAddress, token: Token | None) -> JobSubmissionClient:
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    # Without a token of ours, Ray's client adds one it loads itself when $RAY_AUTH_MODE is
    # `token` (~/.ray/auth_token, whatever the address): an Authorization header of our own,
    # empty, makes it add none.
    headers = token.headers() if token else {"Authorization": ""}
    try:
        return JobSubmissionClient(address.url, headers=headers)
    except AuthenticationError:
        raise UserError(
            f"the Ray cluster at {address.url} refused the auth token; {HOW_TO_SUPPLY}"
        ) from None
    except (ConnectionError, RuntimeError) as e:
        raise UserError(f"no Jobs API at {address.url}: {e}") from None
