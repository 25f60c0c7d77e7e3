"""SASL: each mechanism's bytes, the JavaMail-style choice, and real logins against the sink and a token endpoint."""

from __future__ import annotations

import base64
import hmac
import logging
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from jcsh.runtime.credentials import Secret
from jcsh.runtime.errors import ConnectFailed, JobFailed
from jcsh.runtime.mail.oauth import Grant, TokenRequest, fetch_token
from jcsh.runtime.mail.sasl import (
    CredentialKind,
    MechanismOrder,
    SaslExchange,
    choose_mechanism,
    mechanism_order,
    parse_mechanisms,
)
from jcsh.runtime.sink import Sink, SinkConfig
from tests.support.oauth_server import Client, TokenServer

PASSWORD = "pässword-42"
P = "/configuration/mail/JavaMail/"


def _decode(line: str) -> bytes:
    return base64.b64decode(line.split()[-1])


def test_plain_login_and_cram_md5_bytes() -> None:
    plain = SaslExchange("PLAIN", "alice", Secret(PASSWORD))
    assert _decode(plain.command()) == b"\0alice\0" + PASSWORD.encode()
    login = SaslExchange("login", "alice", Secret(PASSWORD))
    assert login.command() == "AUTH LOGIN"  # no initial response: old servers refuse one
    assert base64.b64decode(login.answer("VXNlcm5hbWU6")) == b"alice"
    assert base64.b64decode(login.answer("UGFzc3dvcmQ6")) == PASSWORD.encode()
    with pytest.raises(ConnectFailed, match="out of turn"):
        login.answer("VXNlcm5hbWU6")
    cram = SaslExchange("CRAM-MD5", "alice", Secret("tanstaaftanstaaf"))
    assert cram.command() == "AUTH CRAM-MD5"
    challenge = b"<1896.697170952@postoffice.example.net>"
    digest = hmac.new(b"tanstaaftanstaaf", challenge, "md5").hexdigest()
    assert base64.b64decode(cram.answer(base64.b64encode(challenge).decode())) == f"alice {digest}".encode()


def test_xoauth2_and_oauthbearer_bytes_and_their_failure_flow() -> None:
    x = SaslExchange("XOAUTH2", "jobs@contoso.example", Secret("tok.en"))
    assert _decode(x.command()) == b"user=jobs@contoso.example\x01auth=Bearer tok.en\x01\x01"
    error = base64.b64encode(b'{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}').decode()
    assert x.answer(error) == ""  # an empty line, then the server's 5xx
    assert x.failure is not None and x.failure.describe() == "status 400, scope https://mail.google.com/"
    o = SaslExchange("OAUTHBEARER", "a,b=c@x.example", Secret("tok"), host="smtp.x.example", port=587)
    expected = b"n,a=a=2Cb=3Dc@x.example,\x01host=smtp.x.example\x01port=587\x01auth=Bearer tok\x01\x01"
    assert _decode(o.command()) == expected
    assert base64.b64decode(o.answer(base64.b64encode(b'{"status":"invalid_token"}').decode())) == b"\x01"
    assert o.failure is not None and o.failure.status == "invalid_token"
    with pytest.raises(ConnectFailed, match="not base64"):
        SaslExchange("XOAUTH2", "u", Secret("t")).answer("%%%")


def test_secrets_stay_out_of_reprs_and_errors() -> None:
    x = SaslExchange("XOAUTH2", "u", Secret("the-token"))
    x.command()
    assert "the-token" not in repr(x) and "the-token" not in str(vars(x))


def _props(**values: str) -> dict[str, tuple[str, str]]:
    return {k: (v, P + k) for k, v in values.items()}


def test_default_orders_follow_javamail() -> None:
    password = mechanism_order({}, "smtp", CredentialKind.PASSWORD)
    assert password.mechanisms == ("LOGIN", "PLAIN", "DIGEST-MD5", "NTLM") and password.origin == "default"
    oauth = mechanism_order({}, "smtp", CredentialKind.OAUTH2)
    assert oauth.mechanisms == ("XOAUTH2", "OAUTHBEARER")
    enabled = mechanism_order(_props(**{"mail.smtp.auth.xoauth2.disable": "false"}), "smtp", CredentialKind.PASSWORD)
    assert enabled.mechanisms[-1] == "XOAUTH2"
    off = mechanism_order(_props(**{"mail.smtp.auth.xoauth2.disable": "true"}), "smtp", CredentialKind.OAUTH2)
    assert off.mechanisms == ("OAUTHBEARER",) and "turned off" in off.notes[0]


def test_the_listed_mechanisms_decide_per_transport() -> None:
    props = _props(**{"mail.smtp.auth.mechanisms": "cram-md5 PLAIN", "mail.smtps.auth.mechanisms": "LOGIN"})
    order = mechanism_order(props, "smtp", CredentialKind.PASSWORD)
    assert order.mechanisms == ("CRAM-MD5", "PLAIN") and order.origin == P + "mail.smtp.auth.mechanisms"
    assert mechanism_order(props, "smtps", CredentialKind.PASSWORD).mechanisms == ("LOGIN",)
    assert choose_mechanism(order, ["PLAIN", "LOGIN", "CRAM-MD5"], "s")[0] == "CRAM-MD5"
    oauth = mechanism_order(_props(**{"mail.smtp.auth.mechanisms": "LOGIN XOAUTH2"}), "smtp", CredentialKind.OAUTH2)
    assert oauth.mechanisms == ("XOAUTH2",) and "LOGIN needs a password" in oauth.notes[0]


def test_choice_skips_what_jcsh_does_not_speak_and_says_what_to_set() -> None:
    order = mechanism_order({}, "smtp", CredentialKind.PASSWORD)
    assert choose_mechanism(order, ["PLAIN", "LOGIN"], "s") == ("LOGIN", ())  # LOGIN first, as JavaMail
    listed = mechanism_order(
        _props(**{"mail.smtp.auth.mechanisms": "DIGEST-MD5 PLAIN"}), "smtp", CredentialKind.PASSWORD
    )
    mech, notes = choose_mechanism(listed, ["DIGEST-MD5", "PLAIN"], "s")
    assert mech == "PLAIN" and "DIGEST-MD5 is offered but skipped" in notes[0]
    with pytest.raises(JobFailed) as e:
        choose_mechanism(order, ["CRAM-MD5", "GSSAPI"], "smtp.example.com:587")
    message = e.value.message
    assert "offers AUTH CRAM-MD5 GSSAPI" in message and "LOGIN PLAIN DIGEST-MD5 NTLM (from default)" in message
    assert f"set {P}mail.smtp.auth.mechanisms to CRAM-MD5" in message
    with pytest.raises(JobFailed, match=r"takes no OAuth 2\.0 token"):
        choose_mechanism(mechanism_order({}, "smtp", CredentialKind.OAUTH2), ["PLAIN", "LOGIN"], "s")
    with pytest.raises(JobFailed, match=r"OAuth 2\.0 tokens only; store an OAuth 2\.0 credential"):
        choose_mechanism(MechanismOrder(("PLAIN",), "x", "mail.smtp."), ["XOAUTH2"], "s")
    xoauth2_off = MechanismOrder(("OAUTHBEARER",), "x", "mail.smtp.", CredentialKind.OAUTH2)
    with pytest.raises(JobFailed, match=r"set \S+auth\.mechanisms to XOAUTH2"):
        choose_mechanism(xoauth2_off, ["XOAUTH2", "LOGIN"], "s")


def test_mechanism_list_parsing() -> None:
    assert parse_mechanisms("login, plain  LOGIN") == ("LOGIN", "PLAIN")
    for bad in ("", "   ", "PLAIN LO$GIN"):
        with pytest.raises(ValueError):
            parse_mechanisms(bad)


# -- real logins --------------------------------------------------------------------------------


@pytest.fixture
def endpoint() -> Iterator[TokenServer]:
    with TokenServer([Client("app", secret="cs")]) as s:
        yield s


def _login(port: int, exchange: SaslExchange) -> tuple[int, bytes]:
    """Drive one AUTH exchange over smtplib's plain command channel, as the wire will."""
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.ehlo("test")
        code, text = client.docmd(exchange.command())
        while code == 334:
            code, text = client.docmd(exchange.answer(text.decode()))
        return code, text


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_a_token_the_endpoint_issued_logs_in_and_a_forged_one_is_refused(
    endpoint: TokenServer, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = fetch_token(
        TokenRequest(Grant.CLIENT_CREDENTIALS, endpoint.url, "app", client_secret=Secret("cs")), context=None, timeout=3
    )
    config = SinkConfig(port=0, auth_mechanisms=(mechanism,), oauth_accept=endpoint.valid)
    with Sink(config) as sink:
        code, _ = _login(sink.port, SaslExchange(mechanism, "jobs@x.example", token.access_token, host="h", port=1))
        assert code == 235
        forged = SaslExchange(mechanism, "jobs@x.example", Secret("forged-token"), host="h", port=1)
        code, text = _login(sink.port, forged)
        assert (code, text) == (535, b"5.7.8 Authentication credentials invalid")
        assert forged.failure is not None and forged.failure.scope == "https://mail.google.com/"
    assert sink.events.count(f"AUTH {mechanism} jobs@x.example: accepted") == 1
    for line in [*sink.events, *(r.getMessage() for r in caplog.records)]:
        assert token.access_token.reveal() not in line and "forged-token" not in line


@pytest.mark.timeout(20)
def test_password_mechanisms_against_the_sink() -> None:
    config = SinkConfig(port=0, auth={"alice": PASSWORD}, auth_mechanisms=("PLAIN", "LOGIN", "CRAM-MD5"))
    with Sink(config) as sink:
        for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5"):
            assert _login(sink.port, SaslExchange(mechanism, "alice", Secret(PASSWORD)))[0] == 235
            assert _login(sink.port, SaslExchange(mechanism, "alice", Secret("wrong")))[0] == 535


@pytest.mark.timeout(20)
def test_token_file_is_reread_at_each_login(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("first-token\n\n")
    with Sink(SinkConfig(port=0, oauth_token_file=tokens)) as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client:
            client.ehlo("test")
            assert client.esmtp_features["auth"].split() == ["OAUTHBEARER", "XOAUTH2"]
        assert _login(sink.port, SaslExchange("XOAUTH2", "u", Secret("second-token")))[0] == 535
        tokens.write_text("first-token\nsecond-token\n")
        assert _login(sink.port, SaslExchange("XOAUTH2", "u", Secret("second-token")))[0] == 235


@pytest.mark.timeout(20)
def test_sink_answers_malformed_token_logins_without_breaking(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("good-token\n")
    with Sink(SinkConfig(port=0, oauth_token_file=tokens)) as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client:
            client.ehlo("test")
            assert client.docmd("AUTH XOAUTH2 %%%not-base64")[0] == 501
            no_gs2 = base64.b64encode(b"auth=Bearer good-token\x01\x01").decode()
            assert client.docmd(f"AUTH OAUTHBEARER {no_gs2}")[0] == 501
            assert client.docmd("AUTH CRAM-MD5")[0] == 504  # not offered: no users
            assert client.docmd("AUTH XOAUTH2")[0] == 334  # no initial response: the sink asks for it
            exchange = SaslExchange("XOAUTH2", "u", Secret("good-token"))
            assert client.docmd(exchange.command().split()[-1])[0] == 235


def test_mail_settings_shows_the_mechanism_order_and_its_origin(home: Path) -> None:
    from tests.support.cli import jcsh

    assert jcsh(home, "registry", "set", P + "mail.smtp.auth.mechanisms", "plain login").code == 0
    ran = jcsh(home, "--json", "mail", "settings", "--server", "smtp.example.test")
    assert ran.code == 0
    assert ran.json["auth_mechanisms"] == {"value": ["PLAIN", "LOGIN"], "origin": P + "mail.smtp.auth.mechanisms"}
    doctor = jcsh(home, "--json", "mail", "doctor")
    assert "unknown JavaMail property" not in doctor.out
