"""TLS distribution (``-proto_dist inet_tls``) on loopback, with a throwaway CA."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirage.etf import Atom
from tests.node.helpers import (
    COOKIE,
    HOST,
    PyNode,
    erl,
    listening_erl,
    start_node,
    stop,
    wait_for,
)

OPENSSL = shutil.which("openssl")


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_cert: Path  # signed by another CA: must be refused
    other_key: Path

    def erl_options(self, tmp: Path, cert: Path, key: Path) -> list[str]:
        """erl flags for TLS distribution with ``cert`` and ``key``, verifying peers."""
        common = (
            f'{{certfile, "{cert}"}}, {{keyfile, "{key}"}}, {{cacertfile, "{self.ca}"}}, '
            "{verify, verify_peer}, {secure_renegotiate, true}"
        )
        options = tmp / f"ssl_dist_{cert.stem}.conf"
        options.write_text(
            f"[{{server, [{common}, {{fail_if_no_peer_cert, true}}]}}, {{client, [{common}]}}].\n"
        )
        return ["-proto_dist", "inet_tls", "-ssl_dist_optfile", str(options)]


def _openssl(*args: str) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], check=True, capture_output=True)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN=mirage test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def _leaf(directory: Path, name: str, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    key, csr, cert = (directory / f"{name}.{ext}" for ext in ("key", "csr", "pem"))
    extensions = directory / f"{name}.ext"
    extensions.write_text(
        f"subjectAltName=DNS:{HOST},DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={HOST}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(extensions),
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if OPENSSL is None:
        pytest.skip("openssl not on PATH (needed to make a throwaway CA)")
    directory = tmp_path_factory.mktemp("pki")
    ca = _ca(directory, "ca")
    cert, key = _leaf(directory, "node", ca)
    other_cert, other_key = _leaf(directory, "stranger", _ca(directory, "other-ca"))
    return Pki(ca[0], cert, key, other_cert, other_key)


@pytest.fixture(scope="module")
def tls_node(
    tmp_path_factory: pytest.TempPathFactory, epmd_port: int, cookie_file: Path, pki: Pki
) -> Iterator[PyNode]:
    started = start_node(
        tmp_path_factory.mktemp("tls"),
        epmd_port,
        cookie=cookie_file,
        extra=["--tls-cert", str(pki.cert), "--tls-key", str(pki.key), "--tls-ca", str(pki.ca)],
    )
    try:
        yield started
    finally:
        stop(started.proc)


CALL = "element(1, gen_server:call({{mirage, {node}}}, {{call, formats, nil, #{{}}}}))"
PING = "net_adm:ping({node})"


def test_tls_call(tls_node: PyNode, epmd_port: int, pki: Pki, tmp_path: Path) -> None:
    options = pki.erl_options(tmp_path, pki.cert, pki.key)
    assert erl(CALL.format(node=tls_node.atom), epmd_port, extra=options) == Atom("ok")


def test_plain_tcp_is_refused_by_a_tls_node(tls_node: PyNode, epmd_port: int) -> None:
    assert erl(PING.format(node=tls_node.atom), epmd_port) == Atom("pang")
    assert tls_node.alive()


def test_certificate_from_another_ca_is_refused(
    tls_node: PyNode, epmd_port: int, pki: Pki, tmp_path: Path
) -> None:
    options = pki.erl_options(tmp_path, pki.other_cert, pki.other_key)
    assert erl(PING.format(node=tls_node.atom), epmd_port, extra=options) == Atom("pang")
    assert tls_node.alive()
    assert erl(
        CALL.format(node=tls_node.atom),
        epmd_port,
        extra=pki.erl_options(tmp_path, pki.cert, pki.key),
    ) == Atom("ok")


def test_tls_outgoing_connection(
    epmd_port: int, cookie_file: Path, pki: Pki, tmp_path: Path
) -> None:
    options = pki.erl_options(tmp_path, pki.cert, pki.key)
    proc, target, out = listening_erl(epmd_port, COOKIE, tmp_path, options)
    try:
        tls = ["--tls-cert", str(pki.cert), "--tls-key", str(pki.key), "--tls-ca", str(pki.ca)]
        node = start_node(
            tmp_path, epmd_port, cookie=cookie_file, extra=[*tls, "--connect", target]
        )
        try:
            wait_for(lambda: proc.poll() is not None, timeout=20, what="erl to finish")
            assert f"up {node.name} [{{node_type,hidden}}] ok" in out.read_text()
        finally:
            stop(node.proc)
    finally:
        stop(proc)
