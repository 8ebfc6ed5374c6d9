"""Verbs that send a search to a Ray cluster and follow it: submit, jobs, status, logs, stop."""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from rsearch.cli.common import SetOption, err, out, user_errors
from rsearch.cluster.package import PackageMode

AddressOption = typer.Option(
    None,
    "--address",
    help="The cluster's dashboard URL, http://HEAD:8265 (default: $RAY_ADDRESS if a URL).",
)
TokenFileOption = typer.Option(
    None,
    "--token-file",
    help="File holding the Ray auth token, private to you (chmod 600). Default: "
    "$RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, and for a head on this machine ~/.ray/auth_token.",
)
TokenOption = typer.Option(
    None,
    "--token",
    help="Discouraged: the token lands in shell history and `ps`; use --token-file or "
    "$RAY_AUTH_TOKEN_PATH.",
)
AllowHttpOption = typer.Option(
    False,
    "--allow-http-token",
    help="Send the token over plain http to a public address (refused otherwise; "
    "$RSEARCH_ALLOW_HTTP_TOKEN=1 too).",
)


def _jobs(address: str | None, token: str | None, token_file: Path | None, allow_http: bool) -> Any:
    from rsearch.cluster.address import HostScope, dashboard_address, host_scope
    from rsearch.cluster.auth import resolve_token
    from rsearch.cluster.jobs import Jobs

    where = dashboard_address(address)
    local = host_scope(where.host) is HostScope.LOOPBACK
    return Jobs(where, resolve_token(token, token_file, local_head=local), allow_http=allow_http)


@user_errors
def submit(
    spec_path: Path = typer.Argument(..., metavar="SPEC"),
    address: str | None = AddressOption,
    token: str | None = TokenOption,
    token_file: Path | None = TokenFileOption,
    allow_http: bool = AllowHttpOption,
    wait: bool = typer.Option(False, "--wait", help="Follow the logs until the job ends."),
    overrides: list[str] = SetOption,
    tracking_uri: str | None = typer.Option(
        None,
        "--tracking-uri",
        help="MLflow store the job records into (default: spec, then $MLFLOW_TRACKING_URI).",
    ),
    track: bool = typer.Option(True, "--track/--no-track", help="Record the search in MLflow."),
    storage: str | None = typer.Option(
        None, "--storage", help="Shared root for run directories (s3://, gs://, a shared mount)."
    ),
    allow_local_storage: bool = typer.Option(
        False,
        "--allow-local-storage",
        help="Accept absolute local paths for storage and MLflow (single node, or shared mount).",
    ),
    package: PackageMode = typer.Option(
        PackageMode.AUTO,
        "--package",
        help="auto: ship rsearch from a source checkout; installed: the image has rsearch; "
        "ship: upload this rsearch with the job.",
    ),
) -> None:
    """Submit a search to a Ray cluster through the Jobs API (validated here first)."""
    from rsearch.cluster.submit import SubmitOptions, prepare_submission

    options = SubmitOptions(
        overrides=overrides or (),
        storage=storage,
        tracking_uri=tracking_uri,
        track=track,
        allow_local_storage=allow_local_storage,
        package=package,
    )
    with tempfile.TemporaryDirectory(prefix="rsearch-submit-") as staging:
        sub = prepare_submission(spec_path, Path(staging), options)
        client = _jobs(address, token, token_file, allow_http)
        job_id = client.submit(sub.entrypoint, sub.runtime_env, sub.submission_id, sub.metadata)
    shipped = "with this rsearch shipped" if sub.ships_rsearch else "using the cluster's rsearch"
    err.print(f"submitted {sub.spec_name} to {client.address.url} ({shipped})", highlight=False)
    out.print(job_id, highlight=False, markup=False)
    if not wait:
        err.print(
            f"follow it: rsearch logs {job_id} --follow --address {client.address.url}",
            highlight=False,
            markup=False,
        )
        return
    follow_to_end(client, job_id)


def follow_to_end(client: Any, job_id: str) -> None:
    """Print the job's output until it ends; exit 1 unless it SUCCEEDED."""
    _follow(client, job_id)
    info = client.wait(job_id)
    status = str(info.status.value)
    if status != "SUCCEEDED":
        err.print(f"job {job_id} {status}: {info.message or ''}", highlight=False, markup=False)
        raise typer.Exit(1)
    err.print(f"job {job_id} SUCCEEDED", highlight=False, markup=False)


def _follow(client: Any, job_id: str) -> None:
    """Print the job's output until it ends; Ctrl-C leaves the job running."""
    try:
        client.follow(job_id, _write_raw)
    except KeyboardInterrupt:
        err.print(
            f"\nstopped following; job {job_id} keeps running (rsearch stop {job_id} ends it)",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(130) from None


def _write_raw(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


@user_errors
def jobs(
    address: str | None = AddressOption,
    token: str | None = TokenOption,
    token_file: Path | None = TokenFileOption,
    allow_http: bool = AllowHttpOption,
) -> None:
    """List the cluster's submitted jobs: id, status, spec, start time."""
    from rich.table import Table

    from rsearch.cluster.submit import METADATA_SPEC

    client = _jobs(address, token, token_file, allow_http)
    table = Table(title=f"jobs on {client.address.url}")
    for column in ("job", "status", "spec / entrypoint", "started"):
        table.add_column(column)
    for job in client.list():
        if not job.submission_id:
            continue  # drivers of submitted jobs and plain ray.init drivers
        spec = (job.metadata or {}).get(METADATA_SPEC) or _short(job.entrypoint)
        table.add_row(job.submission_id, str(job.status.value), spec, _when(job.start_time))
    out.print(table)


@user_errors
def status(
    job_id: str = typer.Argument(..., metavar="JOB"),
    address: str | None = AddressOption,
    token: str | None = TokenOption,
    token_file: Path | None = TokenFileOption,
    allow_http: bool = AllowHttpOption,
) -> None:
    """Show a job's status, message, command and times."""
    info = _jobs(address, token, token_file, allow_http).info(job_id)
    rows = {
        "job": job_id,
        "status": str(info.status.value),
        "message": info.message or "",
        "entrypoint": info.entrypoint,
        "started": _when(info.start_time),
        "ended": _when(info.end_time),
    }
    for key, value in rows.items():
        out.print(f"{key + ':':12}{value}", highlight=False, markup=False)


@user_errors
def logs(
    job_id: str = typer.Argument(..., metavar="JOB"),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until it ends."),
    address: str | None = AddressOption,
    token: str | None = TokenOption,
    token_file: Path | None = TokenFileOption,
    allow_http: bool = AllowHttpOption,
) -> None:
    """Print a job's output."""
    client = _jobs(address, token, token_file, allow_http)
    if follow:
        _follow(client, job_id)
    else:
        _write_raw(client.logs(job_id))


@user_errors
def stop(
    job_id: str = typer.Argument(..., metavar="JOB"),
    wait: bool = typer.Option(False, "--wait", help="Return once the job has ended."),
    address: str | None = AddressOption,
    token: str | None = TokenOption,
    token_file: Path | None = TokenFileOption,
    allow_http: bool = AllowHttpOption,
) -> None:
    """Stop a running job (its trials and workers with it)."""
    client = _jobs(address, token, token_file, allow_http)
    if not client.stop(job_id):
        status = client.info(job_id).status.value
        out.print(f"job {job_id} had already ended ({status})", highlight=False, markup=False)
        return
    if wait:
        info = client.wait(job_id)
        out.print(f"job {job_id} {info.status.value}", highlight=False, markup=False)
    else:
        out.print(f"stopping job {job_id}", highlight=False, markup=False)


def _when(epoch_ms: int | None) -> str:
    if not epoch_ms:
        return "-"
    return datetime.fromtimestamp(epoch_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
