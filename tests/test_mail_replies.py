"""Known replies explained: the table on each listed reply, and the explanation in testmail's result."""

from __future__ import annotations

from pathlib import Path

import pytest

from jcsh.runtime.mail.replies import REPLIES, explain
from jcsh.runtime.registry import open_registry
from tests.support.cli import jcsh
from tests.support.mailconf import RawServer, configure_mail

LISTED = [
    (
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
        "smtp.office365.com",
        "Exchange Online",
        "turned off for the tenant",
    ),
    (
        "550 5.7.30 Basic authentication is not supported for Client Submission.",
        "smtp.office365.com",
        "Exchange Online",
        "Basic authentication",
    ),
    (
        "535 5.7.3 Authentication unsuccessful [AM0PR01CA0001.eurprd01.prod.exchangelabs.com]",
        "smtp.office365.com",
        "Exchange Online",
        "SMTP.SendAsApp",
    ),
    (
        "530 5.7.57 Client not authenticated to send mail. [DB8PR09CA0002]",
        "smtp.office365.com",
        "Exchange Online",
        "did not log in",
    ),
    (
        "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
        "smtp.office365.com",
        "Exchange Online",
        "may not send as",
    ),
    (
        "554 5.2.252 SendAsDenied; jobs@contoso.example not allowed to send as boss@contoso.example",
        "smtp.office365.com",
        "Exchange Online",
        "SendAsDenied",
    ),
    (
        "534-5.7.9 Application-specific password required. https://support.google.com/mail/?p=InvalidSecondFactor",
        "smtp.gmail.com",
        "Gmail",
        "app password",
    ),
    (
        "535-5.7.8 Username and Password not accepted. https://support.google.com/mail/?p=BadCredentials",
        "smtp.gmail.com",
        "Gmail",
        "did not accept",
    ),
    (
        "534-5.7.14 <https://accounts.google.com/signin/continue?sarp=1> Please log in via your web browser",
        "smtp.gmail.com",
        "Gmail",
        "browser",
    ),
    ("530 5.7.0 Must issue a STARTTLS command first.", "mail.example.com", "SMTP", "STARTTLS"),
    ("530 5.7.0 Authentication required", "mail.example.com", "SMTP", "login before MAIL FROM"),
    ("554 5.7.1 <bob@elsewhere.example>: Relay access denied", "mail.example.com", "SMTP", "relay"),
]


@pytest.mark.parametrize(("reply", "server", "provider", "words"), LISTED)
def test_each_listed_reply_is_explained(reply: str, server: str, provider: str, words: str) -> None:
    found = explain(f"the server refused the login as jobs (LOGIN): {reply}", server=server)
    assert found is not None and found.provider == provider
    assert words in found.cause + found.fix
    assert found.reference.startswith("https://")


def test_gmail_rows_need_gmail_words_or_a_gmail_server() -> None:
    other = explain("535 5.7.8 Error: authentication failed", server="mail.example.com")
    assert other is not None and other.provider == "SMTP"  # RFC 4954's meaning, not Google's
    by_host = explain("535 5.7.8 Error: authentication failed", server="smtp.gmail.com")
    assert by_host is not None and by_host.provider == "Gmail"


def test_unknown_replies_and_ports_are_not_explained() -> None:
    assert explain("250 2.0.0 OK") is None
    assert explain("cannot connect to smtp.example.com:530: Connection refused") is None
    assert explain("550 5.1.1 <nobody@example.com>: Recipient address rejected") is None


def test_token_endpoint_errors_are_explained() -> None:
    found = explain("the token endpoint refused ...: invalid_client: AADSTS7000215: Invalid client secret provided.")
    assert found is not None and found.provider == "Entra ID" and "secret" in found.cause
    assert explain("... invalid_grant: Token has been expired or revoked.") is not None


def test_every_row_is_complete() -> None:
    for row in REPLIES:
        assert row.provider and row.cause and row.fix and row.reference.startswith("https://")
        assert row.code is not None or row.pattern is not None  # a row must be specific to something


@pytest.mark.timeout(20)
def test_testmail_explains_a_refusal_in_json_and_in_the_summary(home: Path) -> None:
    def script(conn) -> None:
        conn.sendall(b"220 raw ESMTP\r\n")
        while line := server.read_line(conn):
            verb = line[:4].upper()
            if verb == b"MAIL":
                conn.sendall(b"530 5.7.57 Client not authenticated to send mail. [AM6P195CA0001]\r\n")
            else:
                conn.sendall(b"221 bye\r\n" if verb == b"QUIT" else b"250 ok\r\n")

    with RawServer(lambda conn: script(conn)) as server:
        registry = open_registry(home)
        configure_mail(registry, server.port, **{"mail.smtp.timeout": "3000"})
        registry.close()
        ran = jcsh(home, "--json", "testmail", "--to", "a@example.test")
        human = jcsh(home, "testmail", "--to", "a@example.test")
    assert ran.code == 1 and human.code == 1
    explanation = ran.json["explanation"]
    assert explanation["provider"] == "Exchange Online" and "5.7.57" not in explanation["cause"]
    assert set(explanation) == {"provider", "cause", "fix", "reference"}
    assert "why:" in human.out and "fix:" in human.out and "Exchange Online" in human.out


@pytest.mark.timeout(60)
def test_testmail_explains_each_listed_reply_from_a_raw_server(home: Path) -> None:
    # Login refusals come as the answer to AUTH (a password credential allowed over plain text to
    # this raw server), the others as the answer to MAIL FROM: both through `testmail --json`.
    assert jcsh(home, "credential", "protocol", "add", "smtp").code == 0
    added = jcsh(
        home,
        "credential",
        "add",
        "--protocol",
        "smtp",
        "--endpoint",
        "127.0.0.1",
        "--virtual-user",
        "default",
        "--real-user",
        "jobs",
        "--password-stdin",
        "--allow-plaintext",
        stdin="pw\n",
    )
    assert added.code == 0, added.err
    answer = {"reply": b""}

    def script(conn) -> None:
        conn.sendall(b"220 raw ESMTP\r\n")
        at_auth = answer["reply"][:3] in (b"534", b"535") or b"5.7.30" in answer["reply"]
        while line := server.read_line(conn):
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-raw\r\n250 AUTH PLAIN\r\n")
            elif (verb == b"AUTH" and at_auth) or (verb == b"MAIL" and not at_auth):
                conn.sendall(answer["reply"] + b"\r\n")
            else:
                conn.sendall(b"221 bye\r\n" if verb == b"QUIT" else b"235 ok\r\n" if verb == b"AUTH" else b"250 ok\r\n")

    with RawServer(lambda conn: script(conn)) as server:
        registry = open_registry(home)
        configure_mail(registry, server.port, **{"mail.smtp.timeout": "3000"})
        registry.close()
        for reply, _server, provider, words in LISTED:
            if provider == "Gmail" and "google" not in reply:
                continue  # a Gmail row needs Gmail's words or server name; this server is 127.0.0.1
            answer["reply"] = reply.replace("-", " ", 1).encode()
            ran = jcsh(home, "--json", "testmail", "--to", "a@example.test")
            assert ran.code == 1, (reply, ran.out)
            explanation = ran.json["explanation"]
            assert explanation is not None and explanation["provider"] == provider, (reply, explanation)
            assert words in explanation["cause"] + explanation["fix"], reply
