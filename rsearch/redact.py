"""Keeping credentials out of everything rsearch writes or prints.

Names that look secret lose their values; URIs lose their passwords and every query value
but a few harmless ones; `Authorization`/`Bearer` credentials in text are masked. MLflow
records, the run directory's files, job entrypoints and user-facing messages all pass through
here. Imports nothing heavy (no mlflow, ray or torch), so every layer can use it.

A process that masks a value for its own files keeps the real one (`redact_kept`), so its
own later readers of those files (the end-of-search report, the MLflow store of the run) get
the real value back (`unmask`); any other process must be given the credential again.
"""

from __future__ import annotations

import re
import urllib.parse
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
    "passphrase",
    "apikey",
    "accesskey",
    "accountkey",
    "privatekey",
    "credential",
    "auth",
    "signature",
    "session",
    "cookie",
    "jwt",
    "bearer",
)
"""Parts of a name that mark its value as secret, anywhere in it (compared folded: without
case, `_`, `-`, `.`)."""

SECRET_LAST_WORDS = ("key", "sig", "pwd", "pass", "pw", "sas")
"""Short words that mark a secret only as a name's last word (`api_key`, `AccountKey`,
`db_pass`, `sig`): anywhere else they are too common (`monkey`, `keep_checkpoints`,
`KeyError`, `signal`, `bypass`)."""

PUBLIC_QUERY_NAMES = frozenset(
    {
        "region",  # pyarrow S3: which region a bucket is in
        "endpoint_override",  # pyarrow S3/GCS: an S3-compatible server's host:port
        "scheme",  # pyarrow S3/GCS: http or https to that server
        "anonymous",  # pyarrow S3/GCS: unsigned access to a public bucket
        "project_id",  # pyarrow GCS: the project a bucket is billed to
        "sslmode",  # PostgreSQL (an MLflow backend store): whether TLS is required
    }
)
"""Query names whose values are kept in URIs: settings seen in storage and tracking URIs that
never carry a credential. Every other query value is masked (`?sig=`, `?X-Amz-Signature=`,
`?secret_key=`, and names nobody foresaw)."""

# A URI ends before whitespace or quotes, and not on a sentence's punctuation.
_URI = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]*[^\s'\"<>`.,:;)]")
# scheme://user:password@host -> the password goes; the user name helps debugging and stays.
_USERINFO = re.compile(r"^(?P<head>[^:]+://[^/?#@:]*):[^/?#@]*@")
_QUERY_ITEM = re.compile(r"(?P<head>[?&;](?P<name>[^=&#;?]+)=)(?P<value>[^&#;]*)")
# `name: value` and `name=value` in free text (YAML lines, error messages, env dumps); a quoted
# value is masked whole, and so is an HTTP auth scheme with its credential.
_TEXT_ITEM = re.compile(
    r"(?P<head>(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)[\"']?\s*[:=]\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|(?:(?i:bearer|basic|digest|token)\s+)?[^\s,;}#'\"]+)"
)
_BEARER = re.compile(r"(?i)\b(?P<head>bearer\s+)(?!\*\*\*)[A-Za-z0-9._~+/=\-]+")

_real: dict[str, str] = {}
"""Masked string -> the real one, for the values this process masked with `redact_kept`."""


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def is_secret_name(name: object) -> bool:
    """Whether a setting, query or environment name looks like it holds a secret.

    Args:
        name: A key such as `api_token`, `MLFLOW_TRACKING_PASSWORD`, `AccountKey` or `sig`.
    """
    words = _words(str(name))
    folded = "".join(words)
    return any(word in folded for word in SECRET_WORDS) or (
        bool(words) and words[-1] in SECRET_LAST_WORDS
    )


def redact_uri(uri: str) -> str:
    """A URI with its password and every query value but PUBLIC_QUERY_NAMES' masked.

    Args:
        uri: `scheme://[user[:password]@]host/path[?query][#fragment]`.
    """
    uri = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", uri, count=1)
    return _QUERY_ITEM.sub(_mask_query_item, uri)


def _mask_query_item(match: re.Match[str]) -> str:
    public = match["name"].lower() in PUBLIC_QUERY_NAMES
    if public or match["value"] in ("", MASK):
        return match.group(0)
    return f"{match['head']}{MASK}"


def redact_text(text: str) -> str:
    """The text with URI credentials, bearer tokens and secret-looking `name: value` masked.

    Args:
        text: Free text: an error message, a URI, a line of YAML, a command line.
    """
    text = _URI.sub(lambda m: redact_uri(m.group(0)), text)
    text = _TEXT_ITEM.sub(_mask_named, text)
    return _BEARER.sub(lambda m: f"{m['head']}{MASK}", text)


def _mask_named(match: re.Match[str]) -> str:
    if not is_secret_name(match["name"]) or match["value"].strip("\"'") in ("", MASK):
        return match.group(0)
    return f"{match['head']}{MASK}"


def redact(value: Any) -> Any:
    """A copy of `value` with every secret masked, at any depth.

    Mappings lose the values of secret-looking keys (whole sub-trees included); strings lose
    URI credentials and secret `name: value` pairs; lists and tuples are walked.

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
    """A YAML document safe to write or log, kept verbatim (comments and all) without secrets.

    When it has some, the parsed document is dumped again with the secrets masked: the
    comments are lost, but masking YAML by lines cannot follow nested or multi-line values.

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


def is_masked(text: str) -> bool:
    """Whether a string had a credential masked out of it (it holds the mask)."""
    return MASK in text


def redact_kept(value: Any) -> Any:
    """`redact(value)`, keeping every masked string's real value for `unmask` in this process.

    For the files a search writes about itself: the files hold the masked value, the process
    that wrote them still reaches its MLflow store and storage through them.
    """
    if isinstance(value, Mapping):
        for v in value.values():
            redact_kept(v)
    elif isinstance(value, list | tuple):
        for v in value:
            redact_kept(v)
    elif isinstance(value, str) and (masked := redact_text(value)) != value:
        _real[masked] = value
    return redact(value)


def unmask(value: Any) -> Any:
    """`value` with the strings this process masked (`redact_kept`) given their real values."""
    if isinstance(value, Mapping):
        return {k: unmask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unmask(v) for v in value]
    if isinstance(value, str):
        return _real.get(value, value)
    return value


def without_credentials(uri: str) -> str:
    """The URI without its user info and without the query items `redact_uri` would mask.

    What a masked URI can still be used as, when the credentials come from elsewhere (MLflow's
    MLFLOW_TRACKING_USERNAME/PASSWORD, cloud credentials in the environment).
    """
    parts = urllib.parse.urlsplit(uri)
    items = [p for p in re.split(r"[&;]", parts.query) if p]
    public = [p for p in items if p.partition("=")[0].lower() in PUBLIC_QUERY_NAMES]
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query="&".join(public)))
