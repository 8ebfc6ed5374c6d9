"""What every verb module shares: the consoles, the `--set` option, the user-error wrapper."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
import yaml
from rich.console import Console
from rich.text import Text

from rsearch.errors import UserError
from rsearch.redact import redact_text

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

SetOption = typer.Option(
    None, "--set", help="Override a field: dotted.path=value (YAML value); repeatable."
)


def user_errors(fn: F) -> F:
    """Show a UserError as its message and exit 2, without a traceback or a credential.

    Messages name URIs and settings the user gave, and end up in job logs: every one is
    redacted here, the one place they are printed.
    """

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            message = redact_text(str(e))
            err.print(Text("error: ", style="red") + Text(message), highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def dump_yaml(data: Any) -> str:
    """YAML in the order the data was built, block style."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
