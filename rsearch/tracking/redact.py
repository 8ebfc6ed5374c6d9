"""Keeping secrets out of MLflow: names that look secret lose their values, URIs their passwords.

Everything the recorder logs (params, tags, the spec files, error messages) passes through here
before it reaches MLflow or the on-disk queue, so a token in a spec never lands in either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

MASK = "***"
"""What a secret value is replaced with."""

SECRET_WORDS = (
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "accesskey",
    "privatekey",
    "credential",
    "auth",
)
"""Parts of a name that mark its value as secret (compared without case, `_`, `-`, `.`)."""

# scheme://user:password@host -> the password goes; the user name helps debugging and stays.
_URI_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*):[^\s@/]*@")
# ?token=...&x=1 -> only the secret-looking query values go.
_QUERY_ITEM = re.compile(r"(?P<head>[?&;](?P<name>[A-Za-z0-9_.\-]+)=)(?P<value>[^&#;\s]*)")
# `name: value` and `name=value` in free text (YAML lines, error messages, env dumps).
_TEXT_ITEM = re.compile(
    r"(?P<head>(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)[\"']?\s*[:=]\s*)(?P<value>[^\s,;}#]+)"
)


def is_secret_name(name: object) -> bool:
    """Whether a setting or environment name looks like it holds a secret.

    Args:
        name: A key such as `api_token`, `MLFLOW_TRACKING_PASSWORD` or `tracking.auth.user`.
    """
    folded = re.sub(r"[\s_.\-]", "", str(name)).lower()
    return any(word in folded for word in SECRET_WORDS)


def redact_text(text: str) -> str:
    """The text with URI passwords and the values of secret-looking `name: value` pairs masked.

    Args:
        text: Free text: an error message, a URI, a line of YAML.
    """
    text = _URI_USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _QUERY_ITEM.sub(_mask_named, text)
    return _TEXT_ITEM.sub(_mask_named, text)


def _mask_named(match: re.Match[str]) -> str:
    if not is_secret_name(match["name"]) or match["value"] in ("", MASK):
        return match.group(0)
    return f"{match['head']}{MASK}"


def redact(value: Any) -> Any:
    """A copy of `value` with every secret masked, at any depth.

    Mappings lose the values of secret-looking keys (whole sub-trees included); strings lose
    URI passwords and secret query values; lists and tuples are walked.

    Args:
        value: Settings, a recipe, tags, an environment mapping, or a single value.
    """
    if isinstance(value, Mapping):
        return {k: MASK if is_secret_name(k) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_yaml_text(text: str) -> str:
    """A YAML document safe to log, kept verbatim (comments and all) when it holds no secret.

    When it does, the parsed document is dumped again with the secrets masked: the comments
    are lost, but masking YAML by lines cannot follow nested or multi-line values safely.

    Args:
        text: The YAML file as written.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return redact_text(text)
    if redact(data) == data and redact_text(text) == text:
        return text
    dumped = yaml.safe_dump(redact(data), sort_keys=False, allow_unicode=True)
    return f"# secrets masked by rsearch (comments dropped)\n{dumped}"
