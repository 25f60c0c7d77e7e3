"""`jcsh tls probe` against real servers on loopback: versions, SMTP facts, and every way it cannot connect."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jcsh.runtime.errors import ConnectFailed, LimitHit, TempFailure, UsageError
from jcsh.runtime.sink import Sink, SinkConfig
from jcsh.runtime.tls.probe import VERSIONS, probe
from jcsh.runtime.tls.target import parse_target
from jcsh.runtime.tls.trust import protocol_version
from tests.support.cli import jcsh
from tests.support.mailconf import RawServer
from tests.support.pki import self_signed_der

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
_S_CLIENT_FLAG = {"TLSv1": "-tls1", "TLSv1.1": "-tls1_1", "TLSv1.2": "-tls1_2", "TLSv1.3": "-tls1_3"}


def _v(name: str | None) -> ssl.TLSVersion | None:
    return protocol_version(name) if name else None


@contextlib.contextmanager
def _sink(mode: str = "starttls", low: str | None = None, high: str | None = None, **kw: object) -> Iterator[Sink]:
    config = SinkConfig(port=0, mode=mode, min_version=_v(low), max_version=_v(high), **kw)
    with Sink(config) as sink:
        yield sink


@contextlib.contextmanager
def _silent_listener() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["starttls", "implicit"])
@pytest.mark.parametrize("only", VERSIONS)
def test_a_server_pinned_to_one_version_accepts_exactly_that_one(mode: str, only: str) -> None:
    with _sink(mode, only, only) as sink:
        result = probe(sink.host, sink.port, mode=mode, timeout=5)
    assert result.protocols == {v: v == only for v in VERSIONS}
    assert set(result.reasons) == set(VERSIONS) - {only}
    assert all("refused by the server" in r for r in result.reasons.values())
    assert result.negotiated is not None and result.negotiated.version == only
    assert result.certificate is not None and result.certificate.chain


@pytest.mark.timeout(30)
def test_verdicts_equal_openssl_s_client() -> None:
    with _sink("starttls", "TLSv1.1", "TLSv1.2") as sink:
        result = probe(sink.host, sink.port, timeout=5)
        runs = {
            v: subprocess.Popen(
                [
                    OPENSSL,
                    "s_client",
                    "-starttls",
                    "smtp",
                    "-connect",
                    f"{sink.host}:{sink.port}",
                    _S_CLIENT_FLAG[v],
                    "-cipher",
                    "DEFAULT:@SECLEVEL=0",
                    "-brief",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for v in VERSIONS
        }
        openssl = {v: p.wait(timeout=20) == 0 for v, p in runs.items()}
    assert openssl == {"TLSv1": False, "TLSv1.1": True, "TLSv1.2": True, "TLSv1.3": False}
    assert result.protocols == openssl


@pytest.mark.timeout(30)
def test_smtp_facts_on_the_way() -> None:
    with _sink("starttls", auth={"alice": "pw"}, size_limit=1_000_000) as sink:
        result = probe(sink.host, sink.port, timeout=5)
    smtp = result.smtp.to_json()
    assert smtp["banner"].startswith("220 ")
    assert smtp["starttls_offered"] is True
    assert smtp["starttls_reply"].startswith("220")
    assert "STARTTLS" in smtp["ehlo"] and "STARTTLS" not in smtp["ehlo_tls"]
    assert set(smtp["auth"]) == {"PLAIN", "LOGIN"}
    assert smtp["size"] == 1_000_000
    assert result.negotiated.version == "TLSv1.3"
    assert result.mode == "starttls"


@pytest.mark.timeout(30)
def test_no_starttls_offered_is_a_tls_failure(home: Path) -> None:
    with _sink("plain") as sink:
        with pytest.raises(ConnectFailed) as info:
            probe(sink.host, sink.port, timeout=5)
        ran = jcsh(home, "tls", "probe", f"{sink.host}:{sink.port}", "--json", "--timeout", "5")
    assert info.value.kind == "tls" and "does not offer STARTTLS" in info.value.message
    assert ran.code == 3 and ran.json["error"]["kind"] == "tls"


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("code", "exit_code"), [(421, 75), (554, 3)])
def test_server_refusing_the_session_is_never_exit_0(home: Path, code: int, exit_code: int) -> None:
    with _sink("starttls", fail={"connect": code}) as sink:
        with pytest.raises((ConnectFailed, TempFailure)) as info:
            probe(sink.host, sink.port, timeout=5)
        ran = jcsh(home, "tls", "probe", f"{sink.host}:{sink.port}", "--timeout", "5")
    assert info.value.exit_code == exit_code and f"refused the session: {code} " in info.value.message
    assert ran.code == exit_code and f"refused the session: {code}" in ran.err


@pytest.mark.timeout(30)
def test_protocols_option_limits_the_attempts(home: Path) -> None:
    with _sink("starttls", "TLSv1.2", "TLSv1.3") as sink:
        ran = jcsh(home, "tls", "probe", f"{sink.host}:{sink.port}", "--protocols", "TLSv1.3,TLSv1", "--json")
    assert ran.code == 0, ran.err
    assert ran.json["protocols"] == {"TLSv1": False, "TLSv1.3": True}


@pytest.mark.timeout(30)
def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        sink_cm = _sink("starttls", host="::1")
        sink = sink_cm.__enter__()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        result = probe(f"[{sink.host}]", sink.port, timeout=5)
    finally:
        sink_cm.__exit__(None, None, None)
    assert result.host == "::1"
    assert result.protocols["TLSv1.3"] is True
    assert result.certificate.hostname_match is True


@pytest.mark.timeout(30)
def test_human_output_is_a_table(home: Path) -> None:
    with _sink("implicit", "TLSv1.2", "TLSv1.3") as sink:
        ran = jcsh(home, "tls", "probe", f"{sink.host}:{sink.port}", "--implicit")
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert lines[0].startswith(f"{sink.host}:{sink.port}  implicit")
    assert lines[1].split()[:2] == ["TLSv1", "no"]
    assert lines[3].split() == ["TLSv1.2", "accepted"]
    assert any(line.startswith("negotiated TLSv1.3") for line in lines)
    assert any("NOT trusted: self-signed" in line for line in lines)


@pytest.mark.timeout(30)
def test_default_target_is_the_configured_server(home: Path) -> None:
    with _sink("implicit", "TLSv1.2", "TLSv1.3") as sink:
        for key, value in (
            ("Server", sink.host),
            ("Port", str(sink.port)),
            ("Transport", "smtp"),
            ("ConnectionSecurity", "TLS"),
        ):
            assert jcsh(home, "registry", "set", f"/configuration/mail/{key}", value).code == 0
        ran = jcsh(home, "tls", "probe", "--json", "--timeout", "5")
    assert ran.code == 0, ran.err
    assert (ran.json["host"], ran.json["port"], ran.json["mode"]) == (sink.host, sink.port, "implicit")
    assert ran.json["protocols"]["TLSv1.3"] is True


def test_no_host_and_no_configured_server_says_configure(home: Path) -> None:
    ran = jcsh(home, "tls", "probe", "--json")
    assert ran.code == 1 and ran.json["error"]["kind"] == "config"
    assert "jcsh configure" in ran.json["error"]["message"]


def test_parse_target() -> None:
    assert parse_target("smtp.example.test") == ("smtp.example.test", None)
    assert parse_target("smtp.example.test:587") == ("smtp.example.test", 587)
    assert parse_target("127.0.0.1:25") == ("127.0.0.1", 25)
    assert parse_target("[::1]:2525") == ("::1", 2525)
    assert parse_target("[::1]") == ("::1", None)
    assert parse_target("::1") == ("::1", None)
    for bad in ("host:", "host:99999", "[nothost]:25", "a b", "host:x", ":25"):
        with pytest.raises(UsageError):
            parse_target(bad)


def test_bad_options_are_usage_errors(home: Path) -> None:
    assert jcsh(home, "tls", "probe", "127.0.0.1:1", "--protocols", "TLSv9").code == 2
    assert jcsh(home, "tls", "probe", "127.0.0.1:1", "--timeout", "0").code == 2
    assert jcsh(home, "tls", "probe", "127.0.0.1:1", "--starttls", "--implicit").code == 2


# -- could not connect or handshake: exit 3 or 4, always within the timeout -----------------------


def _timed(fn: object) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises((ConnectFailed, LimitHit)) as info:
        fn()
    return info.value, time.monotonic() - started


@pytest.mark.timeout(20)
def test_refused_port_fails_fast() -> None:
    error, took = _timed(lambda: probe("127.0.0.1", _free_port(), timeout=5))
    assert isinstance(error, ConnectFailed) and "refused" in error.message
    assert took < 2


@pytest.mark.timeout(20)
def test_silent_server_times_out_within_the_timeout(home: Path) -> None:
    with _silent_listener() as port:
        error, took = _timed(lambda: probe("127.0.0.1", port, timeout=1.5))
        ran = jcsh(home, "tls", "probe", f"127.0.0.1:{port}", "--timeout", "1", "--json")
    assert isinstance(error, LimitHit) and "no SMTP greeting" in error.message
    assert took < 1.5 + 0.5
    assert ran.code == 4 and ran.json["error"]["kind"] == "timeout"  # the one timeout kind of every command


@pytest.mark.timeout(20)
def test_plain_server_probed_with_implicit_tls(home: Path) -> None:
    with _sink("plain") as sink:
        error, took = _timed(lambda: probe(sink.host, sink.port, mode="implicit", timeout=5))
        ran = jcsh(home, "tls", "probe", f"{sink.host}:{sink.port}", "--implicit")
    assert isinstance(error, ConnectFailed) and "plain text" in error.message and "--starttls" in error.message
    assert took < 2
    assert ran.code == 3 and "plain text" in ran.err


@pytest.mark.timeout(20)
def test_implicit_server_probed_with_starttls(home: Path) -> None:
    with _sink("implicit") as sink:
        error, took = _timed(lambda: probe(sink.host, sink.port, mode="starttls", timeout=3))
        ran = jcsh(home, "tls", "probe", f"{sink.host}:{sink.port}", "--starttls", "--timeout", "3")
    assert isinstance(error, ConnectFailed) and "--implicit" in error.message
    assert took < 3  # found out on a side connection, well before the timeout
    assert ran.code == 3 and "implicit" in ran.err


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_server_that_completes_no_handshake_is_a_connection_failure(home: Path, mode: str) -> None:
    def script(conn: socket.socket) -> None:
        if mode == "starttls":
            conn.sendall(b"220 hangs up at the handshake\r\n")
            while (line := server.read_line(conn)) and not line.upper().startswith(b"STARTTLS"):
                conn.sendall(b"250-hello\r\n250 STARTTLS\r\n" if line.upper().startswith(b"EHLO") else b"250 ok\r\n")
            conn.sendall(b"220 go ahead\r\n")
        conn.close()  # during the TLS handshake

    with RawServer(script) as server:
        error, _took = _timed(lambda: probe("127.0.0.1", server.port, mode=mode, timeout=5))
        ran = jcsh(home, "tls", "probe", f"127.0.0.1:{server.port}", f"--{mode}", "--timeout", "5")
    assert isinstance(error, ConnectFailed) and "no TLS handshake succeeded" in error.message
    assert ran.code == 3 and len(ran.err.strip().splitlines()) == 1


@pytest.mark.timeout(20)
def test_a_server_that_is_not_smtp(home: Path) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    with RawServer(script) as server:
        error, _ = _timed(lambda: probe("127.0.0.1", server.port, timeout=5))
    assert isinstance(error, ConnectFailed)
    assert "is not an SMTP server" in error.message and "HTTP/1.0 400" in error.message


@pytest.mark.timeout(20)
def test_silent_server_probed_with_implicit_tls_times_out() -> None:
    with _silent_listener() as port:
        error, took = _timed(lambda: probe("127.0.0.1", port, mode="implicit", timeout=1))
    assert isinstance(error, LimitHit) and "TLS handshake" in error.message
    assert took < 1.5


def _v2_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate whose version field says v2: OpenSSL takes it, cryptography refuses it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    der = self_signed_der(key, serial=1234)
    v3 = b"\xa0\x03\x02\x01\x02"
    assert v3 in der
    cert, key_file = folder / "v2.pem", folder / "v2.key"
    cert.write_text(ssl.DER_cert_to_PEM_cert(der.replace(v3, b"\xa0\x03\x02\x01\x01", 1)))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key_file


@pytest.mark.timeout(30)
def test_a_certificate_no_reader_takes_is_one_error_line_not_a_traceback(home: Path, tmp_path: Path) -> None:
    # A hostile server's v2 certificate: the handshake completes, cryptography raises InvalidVersion.
    cert, key = _v2_certificate(tmp_path)
    with _sink("starttls", cert_path=cert, key_path=key) as sink:
        ran = jcsh(home, "tls", "probe", f"{sink.host}:{sink.port}", "--timeout", "5")
        many = jcsh(home, "tls", "probe", f"{sink.host}:{sink.port}", f"{sink.host}:{sink.port}", "--json")
    assert ran.code == 1, ran.err
    assert "Traceback" not in ran.err and "certificate chain cannot be read" in ran.err
    assert [t["error"]["kind"] for t in many.json["targets"]] == ["failed", "failed"]
