"""Which token a command sends: flags first, then Ray's environment variables, then ~/.ray
(only to a head on this machine); token files must be private; where a token may travel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from rsearch.cluster.address import DashboardAddress
from rsearch.cluster.auth import (
    Token,
    check_transport,
    refuse_home_token_for_remote,
    resolve_token,
)
from rsearch.errors import UserError


@dataclass
class Sources:
    home: Path
    env: dict[str, str]
    file: Path


@pytest.fixture
def sources(tmp_path: Path) -> Sources:
    """A different token in every place resolve_token looks."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    for path, text in [
        (home / ".ray" / "auth_token", "from-home\n"),
        (tmp_path / "flag.tok", "from-flag-file\n"),
        (tmp_path / "env.tok", "from-env-path\n"),
    ]:
        _private(path, text)
    env = {"RAY_AUTH_TOKEN": "from-env", "RAY_AUTH_TOKEN_PATH": str(tmp_path / "env.tok")}
    return Sources(home, env, tmp_path / "flag.tok")


def _private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def _value(token: str | None, file: Path | None, s: Sources) -> str | None:
    tok = resolve_token(token, file, s.env, s.home)
    return tok.value if tok else None


def test_order_flag_file_env_env_path_home(sources: Sources) -> None:
    assert _value("from-flag", None, sources) == "from-flag"
    assert _value(None, sources.file, sources) == "from-flag-file"
    assert _value(None, None, sources) == "from-env"
    del sources.env["RAY_AUTH_TOKEN"]
    assert _value(None, None, sources) == "from-env-path"
    del sources.env["RAY_AUTH_TOKEN_PATH"]
    assert _value(None, None, sources) == "from-home"
    (sources.home / ".ray" / "auth_token").unlink()
    assert _value(None, None, sources) is None


def test_sources_are_named_without_the_token(sources: Sources) -> None:
    tok = resolve_token(None, None, sources.env, sources.home)
    assert tok is not None and tok.source == "$RAY_AUTH_TOKEN"
    tok = resolve_token(None, sources.file, sources.env, sources.home)
    assert tok is not None and tok.source == f"--token-file ({sources.file})"


def test_missing_token_file_names_it_and_its_source(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"token file .*nope.tok \(from --token-file\) does not"):
        resolve_token(None, tmp_path / "nope.tok", {}, tmp_path)
    with pytest.raises(UserError, match=r"from \$RAY_AUTH_TOKEN_PATH"):
        resolve_token(None, None, {"RAY_AUTH_TOKEN_PATH": str(tmp_path / "x")}, tmp_path)


def test_empty_file_and_both_flags_are_errors(tmp_path: Path) -> None:
    _private(tmp_path / "empty", "\n")
    with pytest.raises(UserError, match="is empty"):
        resolve_token(None, tmp_path / "empty", {}, tmp_path)
    with pytest.raises(UserError, match="not both"):
        resolve_token("t", tmp_path / "empty", {}, tmp_path)


def test_token_never_in_repr_and_header_is_bearer(tmp_path: Path) -> None:
    tok = resolve_token("s3cr3t", None, {}, tmp_path)
    assert tok is not None
    assert "s3cr3t" not in repr(tok) and "s3cr3t" not in tok.source
    assert tok.headers() == {"Authorization": "Bearer s3cr3t"}


def test_home_token_is_only_for_a_head_on_this_machine(sources: Sources) -> None:
    sources.env.clear()
    assert resolve_token(None, None, sources.env, sources.home, local_head=False) is None
    tok = resolve_token(None, None, sources.env, sources.home, local_head=True)
    assert tok is not None and tok.value == "from-home"
    # Tokens the user names go wherever the user sends them.
    sources.env["RAY_AUTH_TOKEN_PATH"] = str(sources.file)
    tok = resolve_token(None, None, sources.env, sources.home, local_head=False)
    assert tok is not None and tok.value == "from-flag-file"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_named_token_file_others_can_open_is_refused_with_the_chmod(
    tmp_path: Path, mode: int
) -> None:
    path = _private(tmp_path / "t.tok", "secret\n")
    path.chmod(mode)
    with pytest.raises(UserError, match=rf"mode {mode:04o}.*chmod 600 {path}$"):
        resolve_token(None, path, {}, tmp_path)
    with pytest.raises(UserError, match=r"from \$RAY_AUTH_TOKEN_PATH\) is open to other users"):
        resolve_token(None, None, {"RAY_AUTH_TOKEN_PATH": str(path)}, tmp_path)
    path.chmod(0o400)
    assert resolve_token(None, path, {}, tmp_path) == Token("secret", f"--token-file ({path})")


def test_rays_own_home_file_only_warns(
    sources: Sources, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ray writes ~/.ray/auth_token with the umask (0644): refusing it breaks local heads."""
    home_file = sources.home / ".ray" / "auth_token"
    home_file.chmod(0o644)
    tok = resolve_token(None, None, {}, sources.home)
    assert tok is not None and tok.value == "from-home"
    assert f"warning: token file {home_file} is open to other users" in capsys.readouterr().err


def _address(url: str) -> DashboardAddress:
    from rsearch.cluster.address import dashboard_address

    return dashboard_address(url, {})


TOKEN = Token("s3cr3t", "--token-file (t)")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8265", "http://localhost:8265", "http://[::1]:8265"]
)
def test_http_to_this_machine_is_silent(url: str) -> None:
    assert check_transport(_address(url), TOKEN, env={}) is None


def test_https_anywhere_and_no_token_are_silent() -> None:
    assert check_transport(_address("https://8.8.8.8:8265"), TOKEN, env={}) is None
    assert check_transport(_address("http://8.8.8.8:8265"), None, env={}) is None


@pytest.mark.parametrize("host", ["10.1.2.3", "192.168.0.7", "172.16.0.1", "fd00::5"])
def test_http_to_a_private_network_warns_naming_the_host(host: str) -> None:
    url = f"http://[{host}]:8265" if ":" in host else f"http://{host}:8265"
    warning = check_transport(_address(url), TOKEN, env={})
    assert warning is not None and warning.startswith("warning:")
    assert f"to {host} over plain http" in warning and "ssh -L" in warning
    assert "s3cr3t" not in warning


def test_http_to_a_public_address_is_refused_unless_allowed() -> None:
    public = _address("http://8.8.8.8:8265")
    with pytest.raises(UserError, match=r"refusing to send the Ray auth token .* to 8\.8\.8\.8 "):
        check_transport(public, TOKEN, env={})
    with pytest.raises(UserError, match="--allow-http-token"):
        check_transport(public, TOKEN, env={"RSEARCH_ALLOW_HTTP_TOKEN": "0"})
    for allowed in (
        check_transport(public, TOKEN, allow_http=True, env={}),
        check_transport(public, TOKEN, env={"RSEARCH_ALLOW_HTTP_TOKEN": "1"}),
    ):
        assert allowed is not None and "to 8.8.8.8 over plain http" in allowed


def test_a_name_that_does_not_resolve_counts_as_public() -> None:
    with pytest.raises(UserError, match="refusing"):
        check_transport(_address("http://no-such-host.invalid:8265"), TOKEN, env={})


def test_ray_init_to_another_machine_never_gets_the_home_token(sources: Sources) -> None:
    with pytest.raises(UserError, match=r"another machine.*\$RAY_AUTH_TOKEN_PATH"):
        refuse_home_token_for_remote("10.0.0.5:6379", {}, sources.home)
    # Fine: this machine, a named token, no token auth, or no home token to leak.
    refuse_home_token_for_remote("127.0.0.1:6379", {}, sources.home)
    refuse_home_token_for_remote(None, {}, sources.home)
    refuse_home_token_for_remote("10.0.0.5:6379", {"RAY_AUTH_TOKEN_PATH": "x"}, sources.home)
    refuse_home_token_for_remote("10.0.0.5:6379", {"RAY_AUTH_TOKEN": "x"}, sources.home)
    refuse_home_token_for_remote("10.0.0.5:6379", {"RAY_AUTH_MODE": "disabled"}, sources.home)
    (sources.home / ".ray" / "auth_token").unlink()
    refuse_home_token_for_remote("10.0.0.5:6379", {}, sources.home)
