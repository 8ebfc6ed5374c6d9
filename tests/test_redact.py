"""Redaction: which names are secret, what is masked in URIs and text, and what is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsearch.redact import (
    MASK,
    is_secret_name,
    redact,
    redact_kept,
    redact_text,
    redact_uri,
    redact_yaml_text,
    unmask,
    without_credentials,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "name",
    [
        "api_token",
        "GITHUB_TOKEN",
        "client_secret",
        "password",
        "DB_PASSWD",
        "api-key",
        "apiKey",
        "aws_access_key_id",
        "private_key",
        "credentials",
        "MLFLOW_TRACKING_AUTH",
        "tracking.auth.user",
        "sig",
        "X-Amz-Signature",
        "signature",
        "key",
        "pwd",
        "account_key",
        "AccountKey",
        "session",
        "session_id",
        "jwt",
        "bearer",
        "db_pass",
        "cookie",
        "Authorization",
        "passphrase",
        "sas_sig",
    ],
)
def test_names_that_look_secret(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "lr",
        "optim.weight_decay",
        "model.name",
        "keep_last",
        "epochs",
        "keep_checkpoints",
        "monkey",
        "KeyError",
        "key_metric",
        "signal",
        "bypass",
        "compass",
        "region",
        "endpoint_override",
    ],
)
def test_names_that_do_not(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("http://user:secretpw@127.0.0.1:5000", f"http://user:{MASK}@127.0.0.1:5000"),
        ("ray://admin:rayPass9@head:10001", f"ray://admin:{MASK}@head:10001"),
        (
            "postgresql://u:p%40ss@db/x?sslmode=require",
            f"postgresql://u:{MASK}@db/x?sslmode=require",
        ),
        # Azure SAS: every query value goes, whatever its name.
        (
            "https://acct.blob.core.windows.net/c/x?sv=2022-11-02&se=2030&sp=r&sig=AbC%2Bd",
            f"https://acct.blob.core.windows.net/c/x?sv={MASK}&se={MASK}&sp={MASK}&sig={MASK}",
        ),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA&X-Amz-Signature=f00d",
            f"https://b.s3.amazonaws.com/k?X-Amz-Credential={MASK}&X-Amz-Signature={MASK}",
        ),
        (
            "s3://bucket/runs?endpoint_override=127.0.0.1:9000&scheme=http&secret_key=S3KR1T"
            "&access_key=AKIA&region=us-east-1",
            f"s3://bucket/runs?endpoint_override=127.0.0.1:9000&scheme=http&secret_key={MASK}"
            f"&access_key={MASK}&region=us-east-1",
        ),
        ("gs://b/p?anonymous=true&project_id=p1", "gs://b/p?anonymous=true&project_id=p1"),
    ],
)
def test_uris_lose_passwords_and_query_values(text: str, masked: str) -> None:
    assert redact_uri(text) == masked
    assert redact_text(f"cannot reach {text}: refused") == f"cannot reach {masked}: refused"


@pytest.mark.parametrize(
    "kept",
    [
        "http://user@host:5000/path",  # a user name without password is no secret
        "sqlite:////tmp/mlflow.db",
        "s3://bucket/runs/x",
        "file:///home/me/runs",
        "http://127.0.0.1:5000",
    ],
)
def test_uris_without_credentials_are_kept(kept: str) -> None:
    assert redact_text(kept) == kept


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ('password: "my secret pw"', f"password: {MASK}"),
        ("password: 'my secret pw' # x", f"password: {MASK} # x"),
        ('{"api_key": "a b c", "lr": 0.1}', f'{{"api_key": {MASK}, "lr": 0.1}}'),
        ("db_pass=hunter2 HOME=/root", f"db_pass={MASK} HOME=/root"),
        ("AccountKey=abc==;EndpointSuffix=core", f"AccountKey={MASK};EndpointSuffix=core"),
        ("Authorization: Bearer eyJhbGc.x.y", f"Authorization: {MASK}"),
        ("curl -H 'Authorization: Basic dXNlcjpwdw=='", f"curl -H 'Authorization: {MASK}'"),
        ("sent bearer eyJhbGc.x.y to the server", f"sent bearer {MASK} to the server"),
        ("jwt: eyJ0eXAi session=s1 cookie=c2", f"jwt: {MASK} session={MASK} cookie={MASK}"),
        ("sig=abc pwd=x key: k", f"sig={MASK} pwd={MASK} key: {MASK}"),
    ],
)
def test_secret_values_in_text_are_masked_whole(text: str, masked: str) -> None:
    assert redact_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "optim.lr: 0.1",
        "space:\n  optim.lr: {type: float, low: 1.0e-4, high: 0.1, log: true}\n",
        "keep_checkpoints: 2\nmonkey: patch\n",
        "KeyError: 'optim'",
        "trial t_00001 failed: CUDA out of memory; tried to allocate 2 GiB",
        "storage: s3://bucket/runs?endpoint_override=minio:9000&scheme=http",
    ],
)
def test_ordinary_text_is_not_masked(text: str) -> None:
    assert redact_text(text) == text


def test_no_shipped_spec_is_masked() -> None:
    specs = sorted((REPO / "search_spaces").rglob("*.yaml"))
    assert specs
    for path in specs:
        text = path.read_text(encoding="utf-8")
        assert redact_yaml_text(text) == text, path


def test_redact_masks_values_at_any_depth() -> None:
    data = {
        "lr": 0.1,
        "db": {"password": "pw-5678", "host": "db.local"},
        "auth": {"user": "me", "pass": "x"},
        "uris": ["postgresql://alice:hunter2@db/x", "https://h/p?token=qtok99&region=eu"],
        "env": "API_TOKEN=tok-1234 HOME=/root",
    }
    assert redact(data) == {
        "lr": 0.1,
        "db": {"password": MASK, "host": "db.local"},
        "auth": MASK,
        "uris": [f"postgresql://alice:{MASK}@db/x", f"https://h/p?token={MASK}&region=eu"],
        "env": f"API_TOKEN={MASK} HOME=/root",
    }


def test_a_spec_without_secrets_is_kept_verbatim_one_with_secrets_masked() -> None:
    clean = "# comment kept\nname: x  # and this\n"
    assert redact_yaml_text(clean) == clean
    masked = redact_yaml_text("# c\ntracking:\n  uri: http://u:s3cr3t@h\n  api_key: AKIA-ID\n")
    assert "s3cr3t" not in masked and "AKIA-ID" not in masked
    assert "http://u:***@h" in masked


def test_the_masking_process_gets_its_real_values_back() -> None:
    real = {"uri": "http://u:realpw1@h:1", "n": 3, "s": ["s3://b/p?secret_key=k9"]}
    masked = redact_kept(real)
    assert "realpw1" not in str(masked) and "k9" not in str(masked)
    assert unmask(masked) == real
    assert unmask("http://u:***@other") == "http://u:***@other"  # never masked here


@pytest.mark.parametrize(
    ("uri", "bare"),
    [
        ("http://user:pw@127.0.0.1:5000/x", "http://127.0.0.1:5000/x"),
        (
            "s3://b/r?secret_key=k&endpoint_override=h:9&access_key=a",
            "s3://b/r?endpoint_override=h:9",
        ),
        ("s3://b/r?secret_key=k", "s3://b/r"),
        ("s3://b/r", "s3://b/r"),
    ],
)
def test_without_credentials(uri: str, bare: str) -> None:
    assert without_credentials(uri) == bare
