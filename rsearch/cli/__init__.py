"""The `rsearch` command: each verb parses its arguments, calls one library function, prints.

Verbs live in small modules by what they act on and are registered here, in the order
`rsearch --help` lists them. Heavy libraries (torch, ray, mlflow) are imported inside the verbs
that need them, so `rsearch validate` answers in well under a second.
"""

from __future__ import annotations

import sys

import typer

from rsearch.cli import data, jobs, report, search, specs

app = typer.Typer(
    name="rsearch",
    help="Search ResNet training recipes and scaling strategies on Ray.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click output: a usage error is one `Error: ...` line, like rsearch's own errors,
    # not a box that wraps the message.
    rich_markup_mode=None,
)

for verb in (
    specs.validate,
    specs.show,
    specs.sample,
    specs.plan,
    specs.train,
    search.run,
    search.resume,
    search.extend,
    search.best,
    search.ui,
    report.report,
    jobs.submit,
    jobs.jobs,
    jobs.status,
    jobs.logs,
    jobs.stop,
):
    app.command()(verb)
app.add_typer(data.app)


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
