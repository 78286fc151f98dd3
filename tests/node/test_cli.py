"""``python -m mirage.node`` options: what it refuses before touching the network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirage.node.__main__ import config_from, read_cookie
from tests.node.helpers import REPO_ROOT


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "MIRAGE_COOKIE"}
    return subprocess.run(
        [sys.executable, "-m", "mirage.node", *args],
        cwd=REPO_ROOT,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_no_cookie_is_refused() -> None:
    done = run("--name", "m@host")
    assert done.returncode == 2 and "no cookie" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "nohost"], "alive@host"),
        (["--name", "a b@host"], "alive@host"),
        (["--name", "m@host", "--jobs", "-1"], "must be positive"),
        (["--name", "m@host", "--max-handles", "0"], "must be positive"),
        (["--name", "m@host", "--tls-cert", "x.pem"], "TLS needs all of"),
    ],
)
def test_bad_options_are_refused(args: list[str], message: str) -> None:
    done = run(*args, env={"MIRAGE_COOKIE": "c"})
    assert done.returncode == 2 and message in done.stderr


def test_cookie_file_is_stripped_like_erlang_cookie(tmp_path: Path) -> None:
    path = tmp_path / "cookie"
    path.write_text("  secret \n")
    assert read_cookie(path) == b"secret"
    path.write_text("\n")
    with pytest.raises(ValueError, match="no cookie"):
        read_cookie(path)


def test_cookie_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRAGE_COOKIE", "from-env\n")
    config = config_from(["--name", "m@host", "--jobs", "3", "--connect", "e@host"])
    assert (config.cookie, config.jobs, tuple(config.connect)) == (b"from-env", 3, ("e@host",))
    assert "from-env" not in repr(config)  # kept out of logs and reprs
