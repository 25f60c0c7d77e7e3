"""Sending with an OAuth 2.0 credential, and the plaintext rule: a real token endpoint and a sink that
accepts only the tokens it issued, over STARTTLS with a test CA; `testmail` run as a user would."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jcsh.runtime.sink import Sink, SinkConfig
from tests.support.cli import Ran, jcsh
from tests.support.mailconf import MAIL, PASSWORD
from tests.support.oauth_server import Client, TokenServer, rsa_client_certificate
from tests.test_testmail import add_login, basic, setup, tls_sink, trust_root

TO = "rcpt@example.test"
SECRET = "client-secret-Qv7w9"
REQUIRED = (f"{MAIL}/JavaMail/mail.smtp.starttls.required", "true")
FAST = (f"{MAIL}/JavaMail/mail.smtp.timeout", "2000")
CERT, KEY = rsa_client_certificate()


@pytest.fixture
def endpoint() -> Iterator[TokenServer]:
    clients = [Client("app-secret", secret=SECRET), Client("app-cert", certificate_pem=CERT)]
    with TokenServer(clients) as server:
        yield server


def _oauth(home: Path, *options: str, stdin: str = "") -> Ran:
    if "smtp" not in jcsh(home, "credential", "protocol", "ls").out.split():
        jcsh(home, "credential", "protocol", "add", "smtp")
    ran = jcsh(
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
        "jobs@example.test",
        "--replace",
        *options,
        stdin=stdin,
    )
    assert ran.code == 0, ran.err
    return ran


def _secret_client(home: Path, endpoint: TokenServer) -> None:
    _oauth(
        home,
        "--oauth2",
        "client-credentials",
        "--token-url",
        endpoint.url,
        "--client-id",
        "app-secret",
        "--scope",
        "https://outlook.office365.com/.default",
        "--client-secret-stdin",
        stdin=SECRET + "\n",
    )


def _token_sink(pki, endpoint: TokenServer, **kw: object) -> Sink:
    return tls_sink(pki, require_starttls=True, oauth_accept=endpoint.valid, **kw)


def _ready(home: Path, pki, port: int, *extra: tuple[str, str]) -> None:
    trust_root(home, pki)
    basic(home, port, REQUIRED, FAST, *extra)


def _home_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def _secrets_absent(blobs: list[bytes], *secrets: str) -> None:
    for secret in secrets:
        forms = (secret.encode(), base64.b64encode(secret.encode()))
        for blob in blobs:
            assert not any(f in blob for f in forms), secret


# -- the plaintext rule (issue 13) ----------------------------------------------------------------


@pytest.mark.timeout(20)
def test_no_password_crosses_plain_text_even_to_loopback(home: Path) -> None:
    add_login(home, "127.0.0.1", "bob")
    with Sink(SinkConfig(port=0, auth={"bob": PASSWORD})) as plain:
        basic(home, plain.port, FAST)
        ran = jcsh(home, "testmail", "--to", TO)
        assert ran.code == 3, ran.err
        assert "refusing to send the password for 127.0.0.1 over an unencrypted connection" in ran.err
        assert not any("AUTH" in event for event in plain.events) and plain.messages == []
        # --allow-plaintext (command line only) lets it through, with a warning
        pw = f"{PASSWORD}\n"
        again = jcsh(
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
            "bob",
            "--password-stdin",
            "--allow-plaintext",
            "--replace",
            stdin=pw,
        )
        assert again.code == 0, again.err
        sent = jcsh(home, "testmail", "--to", TO)
        assert sent.code == 0, sent.err
        assert "crossed an unencrypted connection" in sent.out + sent.err
        assert len(plain.wait_for(1)) == 1


@pytest.mark.timeout(20)
def test_no_token_crosses_plain_text(home: Path, endpoint: TokenServer) -> None:
    _secret_client(home, endpoint)
    with Sink(SinkConfig(port=0, oauth_accept=endpoint.valid)) as plain:
        basic(home, plain.port, FAST)
        ran = jcsh(home, "testmail", "--to", TO)
    assert ran.code == 3 and "refusing to send the access token for 127.0.0.1" in ran.err
    assert endpoint.hits == 0  # refused before a token was even fetched
    assert not any("AUTH" in event for event in plain.events)


# -- login with each grant ------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_client_secret_login_then_the_cached_token_is_reused(home: Path, pki, endpoint: TokenServer) -> None:
    _secret_client(home, endpoint)
    with _token_sink(pki, endpoint) as sink:
        _ready(home, pki, sink.port)
        first = jcsh(home, "--json", "testmail", "--to", TO, "--transcript")
        second = jcsh(home, "testmail", "--to", TO, "--transcript")
        sink.wait_for(2)
    assert first.code == 0, first.err
    assert first.json["authenticated_as"] == "jobs@example.test"
    assert any("AUTH XOAUTH2" in line for line in first.json["transcript"])  # XOAUTH2 before OAUTHBEARER
    assert second.code == 0 and "access token from the cache" in second.out
    assert endpoint.hits == 1  # the second testmail reused the cached token
    issued = list(endpoint.access_tokens)
    _secrets_absent([_home_bytes(home), first.out.encode(), second.out.encode()], SECRET, *issued)


@pytest.mark.timeout(30)
def test_an_expiring_token_is_fetched_again(home: Path, pki) -> None:
    with TokenServer([Client("app-secret", secret=SECRET)], lifetime=2) as endpoint:
        _secret_client(home, endpoint)
        with _token_sink(pki, endpoint) as sink:
            _ready(home, pki, sink.port)
            assert jcsh(home, "testmail", "--to", TO).code == 0
            # a 2 s lifetime is reused only while more than half remains: the next use fetches again
            import time

            time.sleep(1.1)
            assert jcsh(home, "testmail", "--to", TO).code == 0
            sink.wait_for(2)
        assert endpoint.hits == 2


@pytest.mark.timeout(30)
def test_certificate_login(home: Path, pki, endpoint: TokenServer, tmp_path: Path) -> None:
    (tmp_path / "app.pem").write_text(CERT)
    (tmp_path / "app.key").write_text(KEY)
    _oauth(
        home,
        "--oauth2",
        "client-credentials",
        "--token-url",
        endpoint.url,
        "--client-id",
        "app-cert",
        "--client-certificate",
        str(tmp_path / "app.pem"),
        "--client-key",
        str(tmp_path / "app.key"),
    )
    with _token_sink(pki, endpoint) as sink:
        _ready(home, pki, sink.port)
        ran = jcsh(home, "testmail", "--to", TO)
        sink.wait_for(1)
    assert ran.code == 0, ran.err
    assert endpoint.forms[0]["client_assertion_type"].endswith("jwt-bearer")
    assert b"PRIVATE KEY" not in _home_bytes(home)


@pytest.mark.timeout(30)
def test_refresh_token_login_stores_the_rotated_refresh_token(home: Path, pki, endpoint: TokenServer) -> None:
    first_rt = endpoint.issue_refresh_token("app-secret")
    _oauth(
        home,
        "--oauth2",
        "refresh-token",
        "--token-url",
        endpoint.url,
        "--client-id",
        "app-secret",
        "--refresh-token-stdin",
        stdin=f"{first_rt}\n{SECRET}\n",
    )
    with _token_sink(pki, endpoint) as sink:
        _ready(home, pki, sink.port)
        assert jcsh(home, "testmail", "--to", TO).code == 0
        # the endpoint rotated it: the old one is dead, the stored one must be the new one
        assert first_rt not in endpoint.refresh_tokens and len(endpoint.refresh_tokens) == 1
        refreshed = jcsh(home, "--json", "credential", "token", "--endpoint", "127.0.0.1", "--refresh")
        assert refreshed.code == 0, refreshed.err
        sink.wait_for(1)
    assert endpoint.hits == 2
    _secrets_absent([_home_bytes(home), refreshed.out.encode()], first_rt, *endpoint.refresh_tokens, SECRET)


@pytest.mark.timeout(30)
def test_static_token_login(home: Path, pki, endpoint: TokenServer) -> None:
    from jcsh.runtime.credentials import Secret
    from jcsh.runtime.mail.oauth import Grant, TokenRequest, fetch_token

    got = fetch_token(
        TokenRequest(Grant.CLIENT_CREDENTIALS, endpoint.url, "app-secret", None, Secret(SECRET)),
        context=None,
        timeout=3,
    )
    token = got.access_token.reveal()
    _oauth(home, "--oauth2", "static", "--token-stdin", stdin=token + "\n")
    with _token_sink(pki, endpoint) as sink:
        _ready(home, pki, sink.port)
        ran = jcsh(home, "testmail", "--to", TO, "--transcript")
        sink.wait_for(1)
    assert ran.code == 0, ran.err and endpoint.hits == 1
    _secrets_absent([ran.out.encode(), ran.err.encode()], token)


# -- failures -------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("fault", "code", "said"),
    [
        ("error:invalid_client", 1, "AADSTS7000215"),
        ("echo", 1, "invalid_client"),
        ("429", 75, "429"),
        ("503", 75, "temporarily_unavailable"),
    ],
)
def test_token_endpoint_failures(home: Path, pki, endpoint: TokenServer, fault: str, code: int, said: str) -> None:
    _secret_client(home, endpoint)
    endpoint.fault = fault
    with _token_sink(pki, endpoint) as sink:
        _ready(home, pki, sink.port)
        ran = jcsh(home, "testmail", "--to", TO)
    assert ran.code == code and said in ran.err, ran.err
    assert not any("AUTH" in e and "accepted" in e for e in sink.events) and sink.messages == []
    assert SECRET not in ran.err


@pytest.mark.timeout(30)
def test_a_stalled_endpoint_ends_within_the_timeout(home: Path, pki, endpoint: TokenServer) -> None:
    import time

    _secret_client(home, endpoint)
    endpoint.fault = "stall"
    with _token_sink(pki, endpoint) as sink:
        _ready(home, pki, sink.port)
        started = time.monotonic()
        ran = jcsh(home, "testmail", "--to", TO, "--timeout", "1")
    assert ran.code == 4, ran.err
    assert time.monotonic() - started < 4


@pytest.mark.timeout(30)
def test_an_unreachable_endpoint_is_exit_3(home: Path, pki) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _oauth(
        home,
        "--oauth2",
        "client-credentials",
        "--token-url",
        f"http://127.0.0.1:{port}/t",
        "--client-id",
        "a",
        "--client-secret-stdin",
        stdin="s\n",
    )
    with tls_sink(pki, require_starttls=True, oauth_accept=lambda t: False) as sink:
        _ready(home, pki, sink.port)
        ran = jcsh(home, "testmail", "--to", TO)
    assert ran.code == 3, ran.err


@pytest.mark.timeout(30)
def test_the_server_refusing_the_token_is_exit_1_with_the_explanation(home: Path, pki, endpoint: TokenServer) -> None:
    _secret_client(home, endpoint)
    with tls_sink(pki, require_starttls=True, oauth_accept=lambda token: False) as sink:
        _ready(home, pki, sink.port)
        ran = jcsh(home, "--json", "testmail", "--to", TO)
    assert ran.code == 1 and ran.json["step"] == "AUTH"
    assert ran.json["error"]["kind"] == "refused"
    assert sink.messages == []


# -- mechanisms -----------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_mechanisms_from_the_settings(home: Path, pki, endpoint: TokenServer) -> None:
    _secret_client(home, endpoint)
    with _token_sink(pki, endpoint) as sink:
        _ready(home, pki, sink.port, (f"{MAIL}/JavaMail/mail.smtp.auth.mechanisms", "OAUTHBEARER XOAUTH2"))
        ran = jcsh(home, "testmail", "--to", TO, "--transcript")
        assert ran.code == 0 and "-> AUTH OAUTHBEARER" in ran.out, ran.out + ran.err
        setup(home, (f"{MAIL}/JavaMail/mail.smtp.auth.mechanisms", "PLAIN LOGIN"))
        refused = jcsh(home, "testmail", "--to", TO)
    assert refused.code == 1 and "auth.mechanisms" in refused.err, refused.err


@pytest.mark.timeout(30)
def test_password_mechanisms_in_javamail_order(home: Path, pki) -> None:
    add_login(home, "127.0.0.1", "bob")
    with tls_sink(pki, require_starttls=True, auth={"bob": PASSWORD}) as sink:
        _ready(home, pki, sink.port)
        default = jcsh(home, "testmail", "--to", TO, "--transcript")
        setup(home, (f"{MAIL}/JavaMail/mail.smtp.auth.mechanisms", "PLAIN"))
        plain = jcsh(home, "testmail", "--to", TO, "--transcript")
        setup(home, (f"{MAIL}/JavaMail/mail.smtp.auth.mechanisms", "CRAM-MD5"))
        none = jcsh(home, "testmail", "--to", TO)
    assert "-> AUTH LOGIN" in default.out and "-> AUTH PLAIN" in plain.out
    assert none.code == 1 and "offers AUTH" in none.err and "PLAIN" in none.err


# -- secrets --------------------------------------------------------------------------------------


def _children_text(stop: threading.Event, seen: list[bytes]) -> None:
    """Every child process's argv and environment, polled while the script runs (the worker's among them)."""
    me = str(os.getpid())
    while not stop.is_set():
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and (proc / "stat").read_text().split()[3] == me:
                    seen.append((proc / "cmdline").read_bytes() + (proc / "environ").read_bytes())
            except (OSError, IndexError):
                pass
        stop.wait(0.02)


@pytest.mark.timeout(30)
def test_scripts_and_the_worker_never_see_the_token(home: Path, pki, endpoint: TokenServer) -> None:
    _secret_client(home, endpoint)
    seen: list[bytes] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_children_text, args=(stop, seen), daemon=True)
    with _token_sink(pki, endpoint) as sink:
        _ready(home, pki, sink.port)
        script = (
            "r = mail.test('rcpt@example.test', transcript=True)\n"
            "print(r)\n"
            "print(credentials.list('smtp'))\n"
            "import time\n"
            "time.sleep(0.3)\n"
        )
        watcher.start()
        ran = jcsh(home, "--json", "-c", script)
        stop.set()
        watcher.join()
        sink.wait_for(1)
    assert ran.code == 0, ran.err
    issued = list(endpoint.access_tokens)
    assert issued and endpoint.hits == 1 and seen  # the worker was seen
    _secrets_absent([ran.out.encode(), ran.err.encode(), _home_bytes(home), *seen], SECRET, *issued)


# -- --quit-after ---------------------------------------------------------------------------------


@pytest.mark.timeout(40)
def test_quit_after_each_step_sends_nothing(home: Path, pki, endpoint: TokenServer) -> None:
    _secret_client(home, endpoint)
    bad = "nobody@example.test"
    with _token_sink(pki, endpoint, fail={f"rcpt:{bad}": 550}) as sink:
        _ready(home, pki, sink.port)
        runs = {
            step: jcsh(home, "--json", "testmail", "--to", TO, "--quit-after", step, "--transcript")
            for step in ("connect", "tls", "auth", "rcpt")
        }
        refused = jcsh(home, "--json", "testmail", "--to", TO, "--to", bad, "--quit-after", "rcpt")
        human = jcsh(home, "testmail", "--to", TO, "--quit-after", "auth")
        bad_step = jcsh(home, "testmail", "--to", TO, "--quit-after", "data")
        script = jcsh(
            home, "-c", "r = mail.test('rcpt@example.test', quit_after='auth')\nprint(r.status, r.quit_after)"
        )
        bad_script = jcsh(home, "-c", "mail.test('rcpt@example.test', quit_after='data')")
        assert sink.messages == []  # nothing was delivered, at any step
    for step, ran in runs.items():
        doc = ran.json
        assert ran.code == 0 and doc["status"] == "checked" and doc["quit_after"] == step, (step, ran.out)
        assert doc["transcript"][-2:] == ["-> QUIT", "<- 221 Bye"] or "-> QUIT" in doc["transcript"], step
        sent = [line for line in doc["transcript"] if line.startswith("-> ")]
        assert not any(line.startswith(("-> DATA", "-> BDAT")) for line in sent), step
    assert not any("STARTTLS" in line for line in runs["connect"].json["transcript"] if line.startswith("-> "))
    assert not any("AUTH" in line for line in runs["tls"].json["transcript"] if line.startswith("-> "))
    assert runs["auth"].json["authenticated_as"] == "jobs@example.test"
    assert not any("MAIL FROM" in line for line in runs["auth"].json["transcript"])
    rcpt = [line for line in runs["rcpt"].json["transcript"] if line.startswith("-> ")]
    assert rcpt[-2:] == ["-> RSET", "-> QUIT"]
    assert runs["rcpt"].json["recipients"] == [
        {"address": TO, "verdict": "accepted", "reply": runs["rcpt"].json["recipients"][0]["reply"]}
    ]
    assert refused.code == 1 and refused.json["status"] == "checked"
    verdicts = {r["address"]: r["verdict"] for r in refused.json["recipients"]}
    assert verdicts == {TO: "accepted", bad: "refused"}
    assert human.code == 0 and "up to auth, then QUIT: nothing was sent" in human.out
    assert bad_step.code == 2
    assert script.code == 0 and script.out.split() == ["checked", "auth"], script.err
    assert bad_script.code == 1 and "quit_after must be one of" in bad_script.err


@pytest.mark.timeout(20)
def test_quit_after_a_step_that_did_not_happen_fails(home: Path) -> None:
    with Sink(SinkConfig(port=0)) as plain:
        basic(home, plain.port, FAST)
        no_tls = jcsh(home, "testmail", "--to", TO, "--quit-after", "tls")
        no_login = jcsh(home, "testmail", "--to", TO, "--quit-after", "auth")
        connect = jcsh(home, "testmail", "--to", TO, "--quit-after", "connect")
        assert plain.messages == []
    assert no_tls.code == 3 and "no TLS to check" in no_tls.err
    assert no_login.code == 1 and "no login to check" in no_login.err
    assert connect.code == 0
