"""Address parsing: the Jobs API wants the dashboard URL; `run` asks whether a cluster is remote."""

from __future__ import annotations

import pytest

from rsearch.cluster.address import dashboard_address, is_remote_ray_address
from rsearch.errors import UserError


def test_flag_beats_env_and_default_ports() -> None:
    env = {"RAY_ADDRESS": "http://other:1"}
    a = dashboard_address("http://head:8265/", env)
    assert (a.url, a.host, a.port) == ("http://head:8265", "head", 8265)
    assert dashboard_address(None, env).host == "other"
    assert dashboard_address("https://ray.example.com", {}).port == 443


@pytest.mark.parametrize("env_value", [None, "auto", "127.0.0.1:6379", "ray://head:10001"])
def test_no_url_anywhere_names_the_flag(env_value: str | None) -> None:
    env = {} if env_value is None else {"RAY_ADDRESS": env_value}
    with pytest.raises(UserError, match="pass --address http://HEAD:8265") as e:
        dashboard_address(None, env)
    if env_value:
        assert repr(env_value) in str(e.value)


@pytest.mark.parametrize("bad", ["head:8265", "ray://head:10001", "http://", "http://h:port"])
def test_flag_that_is_not_a_dashboard_url(bad: str) -> None:
    with pytest.raises(UserError, match="--address"):
        dashboard_address(bad, {})


@pytest.mark.parametrize(
    ("address", "remote"),
    [
        (None, False),
        ("auto", False),
        ("127.0.0.1:6379", False),
        ("localhost:6379", False),
        ("ray://127.0.0.1:10001", False),
        ("[::1]:6379", False),
        ("10.0.0.5:6379", True),
        ("ray://head.example.com:10001", True),
    ],
)
def test_is_remote_ray_address(address: str | None, remote: bool) -> None:
    assert is_remote_ray_address(address) is remote
