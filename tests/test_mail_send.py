"""Sending over loopback to real aiosmtpd sinks with real TLS: what the server received, and the result."""

from __future__ import annotations

import json
import time
from base64 import b64encode

import pytest

from jcsh.runtime.errors import UsageError
from jcsh.runtime.mail.message import MailRequest
from jcsh.runtime.mail.send import MailSession, SendResult, send_mail
from jcsh.runtime.mail.settings import load_settings
from jcsh.runtime.sink import Sink, SinkConfig
from tests.support.mailconf import MAIL, PASSWORD, RawServer, add_login, configure_mail, trust, write
from tests.support.pki import self_signed

TO = "rcpt@example.test"
STARTTLS = {"mail.smtp.starttls.enable": "true"}
REQUIRED = {"mail.smtp.starttls.required": "true"}
FAST = {"mail.smtp.connectiontimeout": "2000", "mail.smtp.timeout": "2000"}


def sink_for(pki, mode: str = "plain", **kwargs) -> Sink:
    """A sink on a free port; TLS modes present a leaf from the test CA for localhost/127.0.0.1/::1."""
    if mode != "plain" and "cert_path" not in kwargs:
        leaf = pki.issue()
        kwargs.update(cert_path=leaf.chain_path, key_path=leaf.key_path)
    return Sink(SinkConfig(port=0, mode=mode, **kwargs))


def send(registry, credentials, *, request: MailRequest | None = None, transcript: bool = False) -> SendResult:
    settings = load_settings(registry, credentials)
    return send_mail(
        settings, credentials, request or MailRequest(to=[TO], subject="t", body="b"), transcript=transcript
    )


def nothing_received(sink: Sink, result: SendResult) -> bool:
    """No message of this result reached the sink (other processes' tests may hit a reused port)."""
    time.sleep(0.05)  # a message in flight would land by now
    return all(m.message()["Message-ID"] != result.message_id for m in sink.messages)


# -- security modes -------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_plain(registry, credentials, pki) -> None:
    with sink_for(pki) as sink:
        configure_mail(registry, sink.port)
        result = send(registry, credentials)
        [got] = sink.wait_for(1)
    assert (result.status, result.exit_code, result.error) == ("sent", 0, None)
    assert got.mail_from == "jcsh@example.test" and got.rcpt_tos == [TO] and got.tls_version is None
    assert result.tls is None and result.verified is False and result.certificate is None
    assert result.accepted == [TO] and result.refused == {}
    assert result.final_reply == f"250 OK: queued as {got.queue_id}"
    assert got.message()["Message-ID"] == result.message_id


@pytest.mark.timeout(20)
def test_starttls_offered_upgrades_and_verifies(registry, credentials, pki) -> None:
    trust(credentials, pki.root_pem)
    with sink_for(pki, "starttls") as sink:
        configure_mail(registry, sink.port, **STARTTLS)
        result = send(registry, credentials, transcript=True)
        [got] = sink.wait_for(1)
    assert result.status == "sent" and got.tls_version == result.tls["version"]
    assert result.verified is True and result.warnings == []
    assert result.certificate["issuer"] == "CN=jcsh Test Root CA,O=jcsh tests"
    lines = result.transcript or []
    assert lines.index("-> STARTTLS") < next(i for i, line in enumerate(lines) if line.startswith("-- TLS "))
    assert sum(1 for line in lines if line.startswith("-> EHLO")) == 2  # EHLO again after the upgrade


@pytest.mark.timeout(20)
def test_starttls_enabled_but_not_offered_sends_plain_with_warning(registry, credentials, pki) -> None:
    with sink_for(pki) as sink:
        configure_mail(registry, sink.port, **STARTTLS)
        result = send(registry, credentials)
        [got] = sink.wait_for(1)
    assert result.status == "sent" and result.tls is None and got.tls_version is None
    assert any("does not offer STARTTLS" in w for w in result.warnings)


@pytest.mark.timeout(20)
def test_starttls_required_but_not_offered_sends_nothing(registry, credentials, pki) -> None:
    with sink_for(pki) as sink:
        configure_mail(registry, sink.port, **REQUIRED)
        result = send(registry, credentials)
        assert nothing_received(sink, result)
    assert (result.status, result.exit_code, result.error["kind"]) == ("failed", 3, "tls"), result.error
    assert "does not offer STARTTLS" in result.error["message"]


@pytest.mark.timeout(20)
def test_implicit_tls(registry, credentials, pki) -> None:
    trust(credentials, pki.root_pem)
    with sink_for(pki, "implicit") as sink:
        configure_mail(registry, sink.port, ConnectionSecurity="TLS")
        result = send(registry, credentials)
        [got] = sink.wait_for(1)
    assert result.status == "sent" and result.verified and got.tls_version and result.security == "TLS"


@pytest.mark.timeout(20)
def test_implicit_tls_via_intermediate_chain(registry, credentials, pki) -> None:
    trust(credentials, pki.root_pem)
    leaf = pki.issue(via_intermediate=True)
    with sink_for(pki, "implicit", cert_path=leaf.chain_path, key_path=leaf.key_path) as sink:
        configure_mail(registry, sink.port, **{"mail.smtp.ssl.enable": "true"})
        result = send(registry, credentials)
        sink.wait_for(1)
    assert result.status == "sent" and result.verified


# -- trust ----------------------------------------------------------------------------------------


def _refused_trust(registry, credentials, sink: Sink) -> SendResult:
    configure_mail(registry, sink.port, **REQUIRED)
    result = send(registry, credentials)
    assert nothing_received(sink, result)
    assert (result.status, result.exit_code, result.error["kind"]) == ("failed", 3, "trust")
    return result


@pytest.mark.timeout(20)
def test_untrusted_issuer(registry, credentials, pki, other_ca) -> None:
    trust(credentials, pki.root_pem)
    leaf = other_ca.issue()
    with sink_for(pki, "starttls", cert_path=leaf.chain_path, key_path=leaf.key_path) as sink:
        result = _refused_trust(registry, credentials, sink)
    message = result.error["message"]
    assert "untrusted issuer" in message and "jcsh Untrusted Root CA" in message and "CN=localhost" in message
    # The result names the refused certificate too, not only the message.
    assert result.certificate is not None and result.certificate["issuer"].startswith("CN=jcsh Untrusted Root CA")
    assert result.tls is None and result.verified is False


@pytest.mark.timeout(20)
def test_self_signed_untrusted_then_trusted_via_x509_credential(registry, credentials, pki, tmp_path) -> None:
    leaf = self_signed(tmp_path)
    with sink_for(pki, "starttls", cert_path=leaf.cert_path, key_path=leaf.key_path) as sink:
        message = _refused_trust(registry, credentials, sink).error["message"]
        assert "self-signed" in message
        trust(credentials, leaf.cert_pem, name="the-sink")
        result = send(registry, credentials)
        sink.wait_for(1)
    assert result.status == "sent" and result.verified


@pytest.mark.timeout(20)
def test_expired(registry, credentials, pki) -> None:
    trust(credentials, pki.root_pem)
    leaf = pki.issue(expired=True)
    with sink_for(pki, "starttls", cert_path=leaf.chain_path, key_path=leaf.key_path) as sink:
        message = _refused_trust(registry, credentials, sink).error["message"]
    assert "expired" in message and "CN=localhost" in message


@pytest.mark.timeout(20)
def test_host_name_mismatch(registry, credentials, pki) -> None:
    trust(credentials, pki.root_pem)
    leaf = pki.issue(("smtp.other.example.test",))
    with sink_for(pki, "starttls", cert_path=leaf.chain_path, key_path=leaf.key_path) as sink:
        message = _refused_trust(registry, credentials, sink).error["message"]
    assert "host name mismatch" in message and "smtp.other.example.test" in message


@pytest.mark.timeout(20)
def test_checkserveridentity_false_accepts_mismatch_but_not_verified(registry, credentials, pki) -> None:
    trust(credentials, pki.root_pem)
    leaf = pki.issue(("smtp.other.example.test",))
    with sink_for(pki, "starttls", cert_path=leaf.chain_path, key_path=leaf.key_path) as sink:
        configure_mail(registry, sink.port, **REQUIRED, **{"mail.smtp.ssl.checkserveridentity": "false"})
        result = send(registry, credentials)
        sink.wait_for(1)
    assert result.status == "sent" and result.verified is False
    assert any("host name not checked" in w for w in result.warnings)


@pytest.mark.timeout(20)
def test_dont_verify_sends_and_says_so(registry, credentials, pki, other_ca) -> None:
    leaf = other_ca.issue(expired=True)
    registry.set("/configuration/jcs/TLS/VerifyServerCertificateTrust", "DontVerify")
    with sink_for(pki, "starttls", cert_path=leaf.chain_path, key_path=leaf.key_path) as sink:
        configure_mail(registry, sink.port, **REQUIRED)
        result = send(registry, credentials)
        [got] = sink.wait_for(1)
    assert result.status == "sent" and got.tls_version and result.verified is False
    assert any("not verified (DontVerify)" in w for w in result.warnings)
    assert result.certificate["issuer"] == "CN=jcsh Untrusted Root CA,O=jcsh tests"


@pytest.mark.timeout(20)
def test_ssl_trust_host_list_skips_only_listed_hosts(registry, credentials, pki, other_ca) -> None:
    leaf = other_ca.issue()
    with sink_for(pki, "starttls", cert_path=leaf.chain_path, key_path=leaf.key_path) as sink:
        configure_mail(registry, sink.port, **REQUIRED, **{"mail.smtp.ssl.trust": "smtp.example.test 10.9.9.9"})
        assert send(registry, credentials).error["kind"] == "trust"
        registry.set(f"{MAIL}/JavaMail/mail.smtp.ssl.trust", "smtp.example.test 127.0.0.1")
        result = send(registry, credentials)
        sink.wait_for(1)
    assert result.status == "sent" and result.verified is False
    assert any("ssl.trust lists 127.0.0.1" in w for w in result.warnings)


# -- login ----------------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_login_after_starttls_and_transcript_never_holds_the_password(registry, credentials, pki) -> None:
    trust(credentials, pki.root_pem)
    add_login(credentials, "127.0.0.1")
    with sink_for(pki, "starttls", require_starttls=True, auth={"bob": PASSWORD}) as sink:
        configure_mail(registry, sink.port, **REQUIRED)
        result = send(registry, credentials, transcript=True)
        [got] = sink.wait_for(1)
    assert result.status == "sent" and result.authenticated_as == "bob" and got.authenticated_as == "bob"
    dumped = json.dumps(result.to_json()).encode()
    for secret in (PASSWORD.encode(), b64encode(PASSWORD.encode()), b64encode(b"\0bob\0" + PASSWORD.encode())):
        assert secret not in dumped
    assert "-> AUTH LOGIN" in (result.transcript or [])  # JavaMail's order: LOGIN before PLAIN
    assert PASSWORD not in repr(result)


@pytest.mark.timeout(20)
def test_login_with_auth_login_only(registry, credentials, pki) -> None:
    # A server offering only LOGIN: drive it with the raw server to see both redacted continuation lines.
    # It speaks plain text: the credential must allow that (`--allow-plaintext`).
    add_login(credentials, "127.0.0.1", allow_plaintext=True)

    def script(conn):
        conn.sendall(b"220 raw ESMTP\r\n")
        server.read_line(conn)
        conn.sendall(b"250-raw\r\n250 AUTH LOGIN\r\n")
        server.read_line(conn)  # AUTH LOGIN (no initial response, as JavaMail)
        conn.sendall(b"334 VXNlcm5hbWU6\r\n")
        server.read_line(conn)  # <user>
        conn.sendall(b"334 UGFzc3dvcmQ6\r\n")
        server.read_line(conn)  # <password>
        conn.sendall(b"235 ok\r\n")
        for reply in (b"250 ok", b"250 ok", b"354 go"):
            server.read_line(conn)
            conn.sendall(reply + b"\r\n")
        while server.read_line(conn) not in (b".\r\n", b""):
            pass
        conn.sendall(b"250 queued as RAW1\r\n")
        server.read_line(conn)
        conn.sendall(b"221 bye\r\n")

    with RawServer(script) as server:
        configure_mail(registry, server.port, **FAST)
        result = send(registry, credentials, transcript=True)
    assert result.status == "sent" and result.authenticated_as == "bob"
    assert b64encode(PASSWORD.encode()) in server.received  # the server did get it...
    assert "-> AUTH LOGIN" in result.transcript and result.transcript.count("-> <redacted>") == 2
    assert b64encode(PASSWORD.encode()).decode() not in json.dumps(result.to_json())  # ...the transcript did not
    assert any("unencrypted connection (the credential allows plain text)" in w for w in result.warnings)


@pytest.mark.timeout(20)
def test_login_refused_535(registry, credentials, pki) -> None:
    trust(credentials, pki.root_pem)
    add_login(credentials, "127.0.0.1", password="wrong-" + PASSWORD)
    with sink_for(pki, "starttls", auth={"bob": PASSWORD}) as sink:
        configure_mail(registry, sink.port, **REQUIRED)
        result = send(registry, credentials, transcript=True)
        assert nothing_received(sink, result)
    assert (result.status, result.exit_code) == ("failed", 1)
    assert "535" in result.error["message"] and result.authenticated_as is None
    assert "wrong-" not in json.dumps(result.to_json())


# -- refusals and faults --------------------------------------------------------------------------

BAD = "bad@example.test"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("partial", [False, True])
def test_refused_recipient_with_send_partial(registry, credentials, pki, partial: bool) -> None:
    with sink_for(pki, fail={f"rcpt:{BAD}": 550}) as sink:
        configure_mail(registry, sink.port, SendPartial=str(partial).lower())
        result = send(registry, credentials, request=MailRequest(to=[TO, BAD], cc=["cc@example.test"]))
        if partial:
            [got] = sink.wait_for(1)
            assert got.rcpt_tos == [TO, "cc@example.test"]
        else:
            assert nothing_received(sink, result)
    assert result.refused == {BAD: f"550 jcsh sink: failing rcpt:{BAD} as asked"}
    assert result.exit_code == 1
    if partial:
        assert result.status == "partial" and result.accepted == [TO, "cc@example.test"]
    else:
        assert result.status == "failed" and result.accepted == [] and "SendPartial is false" in result.error["message"]


@pytest.mark.timeout(20)
def test_refusal_resets_and_the_session_carries_the_next_message(registry, credentials, pki) -> None:
    with sink_for(pki, fail={f"rcpt:{BAD}": 550}) as sink:
        configure_mail(registry, sink.port)
        with MailSession(load_settings(registry, credentials), credentials, transcript=True) as session:
            first = session.send(MailRequest(to=[TO, BAD]))
            second = session.send(MailRequest(to=[TO]))
        [got] = sink.wait_for(1)
    assert first.status == "failed" and "-> RSET" in (first.transcript or [])
    assert second.status == "sent" and got.rcpt_tos == [TO]
    assert not any(line.startswith("-- connecting") for line in second.transcript or [])


@pytest.mark.timeout(20)
def test_421_at_greeting_is_temporary(registry, credentials, pki) -> None:
    with sink_for(pki, fail={"connect": 421}) as sink:
        configure_mail(registry, sink.port, **FAST)
        result = send(registry, credentials)
    assert (result.status, result.exit_code) == ("failed", 75)
    assert "421 jcsh sink: failing connect as asked" in result.error["message"]


@pytest.mark.timeout(20)
def test_452_at_rcpt_is_temporary(registry, credentials, pki) -> None:
    with sink_for(pki, fail={"rcpt": 452}) as sink:
        configure_mail(registry, sink.port)
        result = send(registry, credentials)
        assert nothing_received(sink, result)
    assert (result.status, result.exit_code) == ("failed", 75)
    assert result.refused[TO].startswith("452 ")


@pytest.mark.timeout(20)
def test_554_at_data_is_permanent(registry, credentials, pki) -> None:
    with sink_for(pki, fail={"data": 554}) as sink:
        configure_mail(registry, sink.port)
        result = send(registry, credentials)
        assert nothing_received(sink, result)
    assert (result.status, result.exit_code) == ("failed", 1)
    assert "554 jcsh sink: failing data as asked" in result.error["message"]


@pytest.mark.timeout(20)
def test_connection_dropped_during_data(registry, credentials) -> None:
    def script(conn):
        conn.sendall(b"220 raw ESMTP\r\n")
        for reply in (b"250 raw", b"250 ok", b"250 ok", b"354 go ahead"):
            server.read_line(conn)
            conn.sendall(reply + b"\r\n")
        server.read_line(conn)  # the first line of the message, then hang up

    with RawServer(script) as server:
        configure_mail(registry, server.port, **FAST)
        result = send(registry, credentials)
    assert (result.status, result.exit_code, result.error["kind"]) == ("failed", 3, "connect")
    assert "without a final reply" in result.error["message"]


@pytest.mark.timeout(20)
def test_server_that_never_greets_is_bounded_by_the_timeout(registry, credentials) -> None:
    with RawServer(lambda conn: server.stopped.wait(10)) as server:
        configure_mail(registry, server.port, **{"mail.smtp.timeout": "400"})
        started = time.monotonic()
        result = send(registry, credentials)
        elapsed = time.monotonic() - started
    assert (result.status, result.exit_code, result.error["kind"]) == ("failed", 4, "timeout"), result.error
    assert 0.35 < elapsed < 2.0
    assert "implicit-TLS port" in result.error["message"]


@pytest.mark.timeout(20)
def test_unreachable_port_is_a_connection_failure(registry, credentials) -> None:
    with RawServer(lambda conn: None) as server:
        port = server.port
    configure_mail(registry, port, **FAST)  # nothing listens there any more
    result = send(registry, credentials)
    assert (result.exit_code, result.error["kind"]) == (3, "connect")


@pytest.mark.timeout(20)
def test_size_limit_honoured(registry, credentials, pki) -> None:
    with sink_for(pki, size_limit=2000) as sink:
        configure_mail(registry, sink.port)
        small = send(registry, credentials)
        big = send(registry, credentials, request=MailRequest(to=[TO], body="x" * 5000))
        [got] = sink.wait_for(1)
    assert small.status == "sent" and b"SIZE=" not in got.content  # the option went to MAIL, not the body
    assert (big.status, big.exit_code) == ("failed", 1) and "SIZE" in big.error["message"]


# -- message content over the wire ----------------------------------------------------------------


@pytest.mark.timeout(20)
def test_bcc_never_reaches_the_headers(registry, credentials, pki) -> None:
    with sink_for(pki) as sink:
        configure_mail(registry, sink.port)
        send(registry, credentials, request=MailRequest(to=[TO], bcc=["secret-boss@example.test"]))
        [got] = sink.wait_for(1)
    assert "secret-boss@example.test" in got.rcpt_tos
    assert b"secret-boss" not in got.content and b"Bcc" not in got.content


@pytest.mark.timeout(20)
def test_header_injection_refused_before_connecting(registry, credentials) -> None:
    with RawServer(lambda conn: server.received.extend(b"connected")) as server:
        configure_mail(registry, server.port, **FAST)
        with pytest.raises(UsageError):
            send(registry, credentials, request=MailRequest(to=[TO], subject="x\r\nBcc: evil@example.test"))
        with pytest.raises(UsageError):
            send(registry, credentials, request=MailRequest(to=["not an address"]))
        time.sleep(0.05)
    assert server.received == bytearray()


@pytest.mark.timeout(20)
def test_attachment_outside_accessible_path_sends_nothing(registry, credentials, pki, tmp_path) -> None:
    allowed = tmp_path / "allowed"
    outside = write(tmp_path / "outside.txt", b"private")
    with sink_for(pki) as sink:
        configure_mail(registry, sink.port, AccessiblePath=str(allowed))
        result = send(registry, credentials, request=MailRequest(to=[TO], attachments=[str(outside)]))
        assert nothing_received(sink, result)
    assert (result.status, result.exit_code) == ("failed", 1)
    assert "outside AccessiblePath" in result.error["message"]


@pytest.mark.timeout(20)
def test_attachment_skip_sends_without_it(registry, credentials, pki, tmp_path) -> None:
    allowed = tmp_path / "allowed"
    inside = write(allowed / "ok.csv", b"a,b\n")
    outside = write(tmp_path / "outside.txt", b"private")
    with sink_for(pki) as sink:
        configure_mail(registry, sink.port, AccessiblePath=str(allowed), AttachmentError="Skip")
        result = send(registry, credentials, request=MailRequest(to=[TO], attachments=[str(inside), str(outside)]))
        [got] = sink.wait_for(1)
    assert result.status == "sent" and result.exit_code == 0
    assert [p.get_filename() for p in got.message().iter_attachments()] == ["ok.csv"]
    assert b"private" not in got.content
    assert any("outside AccessiblePath" in w for w in result.warnings)


# -- sessions -------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_session_reuses_one_connection(registry, credentials, pki) -> None:
    with sink_for(pki) as sink:
        configure_mail(registry, sink.port)
        with MailSession(load_settings(registry, credentials), credentials, transcript=True) as session:
            results = [session.send(MailRequest(to=[TO], subject=f"m{i}")) for i in range(5)]
        got = sink.wait_for(5)
    assert [r.status for r in results] == ["sent"] * 5
    assert len({g.peer for g in got}) == 1  # one connection
    assert sum(line.startswith("-- connecting") for r in results for line in r.transcript or []) == 1


def one_message_per_connection(server: RawServer, farewell: bytes | None, delivered: list[int]):
    """A raw server taking one message per connection, then closing: silently, or after `farewell`."""

    def script(conn) -> None:
        conn.sendall(b"220 raw ESMTP\r\n")
        while line := server.read_line(conn):
            verb = line[:4].upper()
            if verb == b"DATA":
                conn.sendall(b"354 go\r\n")
                while server.read_line(conn) not in (b".\r\n", b""):
                    pass
                delivered.append(1)
                conn.sendall(f"250 queued as RAW{len(delivered)}\r\n".encode())
                if farewell is not None and server.read_line(conn):
                    conn.sendall(farewell + b"\r\n")
                return
            conn.sendall(b"221 bye\r\n" if verb == b"QUIT" else b"250 ok\r\n")

    return script


@pytest.mark.timeout(30)
@pytest.mark.parametrize("farewell", [None, b"421 4.4.2 idle for too long, closing"])
def test_session_reconnects_when_the_server_closed(registry, credentials, farewell: bytes | None) -> None:
    delivered: list[int] = []
    with RawServer(lambda conn: script(conn)) as server:
        script = one_message_per_connection(server, farewell, delivered)
        configure_mail(registry, server.port, **FAST)
        with MailSession(load_settings(registry, credentials), credentials, transcript=True) as session:
            results = [session.send(MailRequest(to=[TO], subject=f"m{i}")) for i in range(3)]
    assert [(r.status, r.final_reply) for r in results] == [("sent", f"250 queued as RAW{i}") for i in (1, 2, 3)]
    assert len(delivered) == 3
    assert "-- the server closed the connection; reconnecting" in (results[1].transcript or [])


def test_certificate_names_match_cryptography_rfc4514() -> None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from jcsh.runtime.mail.result import _rfc4514

    values = ["plain", "a,b+c", " lead and trail ", '#hash "q" <x>;\\', "Grüße"]
    for value in values:
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, value),
                x509.NameAttribute(NameOID.COMMON_NAME, "smtp.example.test"),
            ]
        )
        as_ssl = ((("countryName", "DE"),), (("organizationName", value),), (("commonName", "smtp.example.test"),))
        assert _rfc4514(as_ssl) == name.rfc4514_string()
    assert _rfc4514(((("emailAddress", "a@example.test"),),)) is None  # unknown: falls back to certinfo


@pytest.mark.timeout(20)
def test_non_ascii_address_uses_smtputf8(registry, credentials, pki) -> None:
    with sink_for(pki) as sink:  # aiosmtpd offers SMTPUTF8
        configure_mail(registry, sink.port)
        result = send(registry, credentials, request=MailRequest(to=["jörg@example.test"], subject="ü"))
        [got] = sink.wait_for(1)
    assert result.status == "sent", result.error
    assert got.rcpt_tos == ["jörg@example.test"] and "jörg@example.test".encode() in got.content


@pytest.mark.timeout(20)
def test_failed_handshake_never_downgrades_even_when_opportunistic(registry, credentials, pki) -> None:
    import ssl

    trust(credentials, pki.root_pem)
    with sink_for(pki, "starttls", min_version=ssl.TLSVersion.TLSv1_3) as sink:
        configure_mail(registry, sink.port, **STARTTLS, **{"mail.smtp.ssl.protocols": "TLSv1.2"})
        result = send(registry, credentials)
        assert nothing_received(sink, result)
    assert (result.status, result.exit_code, result.error["kind"]) == ("failed", 3, "tls"), result.error
    assert "handshake" in result.error["message"]


@pytest.mark.timeout(20)
def test_implicit_tls_against_a_plain_server(registry, credentials, pki) -> None:
    with sink_for(pki) as sink:
        configure_mail(registry, sink.port, ConnectionSecurity="TLS", **FAST)
        result = send(registry, credentials)
    assert (result.exit_code, result.error["kind"]) == (3, "tls")


@pytest.mark.timeout(20)
def test_plain_against_an_implicit_tls_port_times_out_with_a_hint(registry, credentials, pki) -> None:
    with sink_for(pki, "implicit") as sink:
        configure_mail(registry, sink.port, **{"mail.smtp.timeout": "300"})
        result = send(registry, credentials)
    assert (result.exit_code, result.error["kind"]) == (4, "timeout")
    assert "implicit-TLS port" in result.error["message"]
