"""OAuth 2.0 token fetch against a real token endpoint on loopback: grants, expiry, rotation, faults, secrecy."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Iterator

import pytest

from jcsh.runtime.credentials import Secret
from jcsh.runtime.errors import ConnectFailed, JcshError, JobFailed, LimitHit, TempFailure, UsageError
from jcsh.runtime.mail.oauth import (
    ClientCertificate,
    Grant,
    OAuthFailure,
    Token,
    TokenRequest,
    check_token_url,
    entra_endpoint,
    fetch_token,
    static_token,
    token_info,
    token_reusable,
)
from tests.support.oauth_server import Client, TokenServer, rsa_client_certificate
from tests.support.pki import TestCA

SECRET = "s3cr3t-Client-Value~42"
CERT_PEM, KEY_PEM = rsa_client_certificate()


@pytest.fixture
def server() -> Iterator[TokenServer]:
    clients = [Client("app-secret", secret=SECRET), Client("app-cert", certificate_pem=CERT_PEM)]
    with TokenServer(clients) as s:
        yield s


def _secret_request(server: TokenServer, **kw: object) -> TokenRequest:
    fields: dict = {"grant": Grant.CLIENT_CREDENTIALS, "token_url": server.url, "client_id": "app-secret"}
    fields |= {"scope": "https://outlook.office365.com/.default", "client_secret": Secret(SECRET)} | kw
    return TokenRequest(**fields)


def _fetch(request: TokenRequest, timeout: float = 3.0, now: float | None = None) -> Token:
    return fetch_token(request, context=None, timeout=timeout, now=now)


def test_client_secret_grant_issues_a_token_the_endpoint_knows(server: TokenServer) -> None:
    token = _fetch(_secret_request(server))
    assert server.valid(token.access_token.reveal())
    assert token.expires_in == 3600 and token.scope == "https://outlook.office365.com/.default"
    assert token.refresh_token is None
    assert server.hits == 1
    assert server.forms[0]["grant_type"] == "client_credentials"


def test_certificate_grant_sends_a_signed_assertion_entra_accepts(server: TokenServer) -> None:
    cert = ClientCertificate(CERT_PEM, Secret(KEY_PEM))
    request = TokenRequest(Grant.CLIENT_CREDENTIALS, server.url, "app-cert", "scope/.default", certificate=cert)
    first, second = _fetch(request), _fetch(request)
    assert server.valid(first.access_token.reveal()) and server.valid(second.access_token.reveal())
    assert "client_secret" not in server.forms[0]
    assert len(server.seen_jti) == 2  # a fresh jti per assertion: the endpoint refuses replays


def test_an_assertion_signed_by_another_key_is_refused(server: TokenServer) -> None:
    other_cert, other_key = rsa_client_certificate("impostor")
    request = TokenRequest(
        Grant.CLIENT_CREDENTIALS, server.url, "app-cert", certificate=ClientCertificate(other_cert, Secret(other_key))
    )
    with pytest.raises(JobFailed) as e:
        _fetch(request)
    assert "invalid_client" in e.value.message and "AADSTS700027" in e.value.message


def test_client_certificate_checks_the_pair_offline(tmp_path) -> None:
    _, other_key = rsa_client_certificate("other")
    with pytest.raises(UsageError, match="does not belong"):
        ClientCertificate(CERT_PEM, Secret(other_key))
    ec = TestCA(tmp_path).issue()
    with pytest.raises(UsageError, match="not an RSA key"):
        ClientCertificate(ec.cert_pem.decode(), Secret(ec.key_pem.decode()))
    with pytest.raises(UsageError, match="not a PEM certificate"):
        ClientCertificate("junk", Secret(KEY_PEM))
    assert KEY_PEM not in repr(ClientCertificate(CERT_PEM, Secret(KEY_PEM)))


def test_refresh_token_grant_rotates_and_the_old_one_dies(server: TokenServer) -> None:
    rt = server.issue_refresh_token("app-secret")
    request = _secret_request(server, grant=Grant.REFRESH_TOKEN, refresh_token=Secret(rt))
    token = _fetch(request)
    assert token.refresh_token is not None and token.refresh_token.reveal() != rt
    assert server.valid(token.access_token.reveal())
    with pytest.raises(JobFailed, match="invalid_grant"):  # the caller must store the rotated one
        _fetch(request)
    again = _fetch(request._replace(refresh_token=token.refresh_token))
    assert server.valid(again.access_token.reveal())


def test_reuse_policy() -> None:
    assert token_reusable(1000, 3600, 1000 + 3539)  # 61 s left
    assert not token_reusable(1000, 3600, 1000 + 3540)  # 60 s left: fetch again
    assert token_reusable(1000, 60, 1029)  # short lifetime: more than half left
    assert not token_reusable(1000, 60, 1030)
    assert not token_reusable(1000, 10, 1005)
    assert not token_reusable(1000, None, 1000)  # lifetime not said: never reused


def test_a_cached_token_is_fetched_again_only_after_its_margin(server: TokenServer) -> None:
    cached = _fetch(_secret_request(server))  # 3600 s: reusable until 60 s before it expires
    clock = [cached.obtained_at + 60 * n for n in range(60)]  # an hour of sends, one a minute

    def use(now: float) -> Token:
        nonlocal cached
        if not cached.reusable(now):
            cached = _fetch(_secret_request(server), now=now)
        return cached

    for now in clock[:59]:
        use(now)
    assert server.hits == 1  # 58 minutes in, still the first token
    use(clock[59])  # 59 minutes in: 60 s left, fetched again
    assert server.hits == 2 and server.valid(cached.access_token.reveal())


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        ("error:invalid_client", JobFailed, ["invalid_client", "AADSTS7000215", "trace_id 0b4c1e2a-trace"]),
        ("error:unauthorized_client", JobFailed, ["unauthorized_client", "correlation_id 77d1-corr"]),
        ("429", TempFailure, ["429", "retry after 30"]),
        ("503", TempFailure, ["temporarily_unavailable"]),
        ("404", JobFailed, ["404", "token URL"]),
        ("not-json", ConnectFailed, ["not a JSON object", "text/html"]),
        ("no-token", ConnectFailed, ["without an access_token"]),
        ("bad-expires", ConnectFailed, ["expires_in -5"]),
        ("oversized", ConnectFailed, ["more than 256 KB"]),
        ("header-flood", ConnectFailed, ["broke HTTP"]),
    ],
)
def test_each_failure_has_its_exit_code_and_says_why(
    server: TokenServer, fault: str, error: type[JcshError], words: list[str]
) -> None:
    server.fault = fault
    with pytest.raises(error) as e:
        _fetch(_secret_request(server))
    assert type(e.value) is error
    for word in words:
        assert word in e.value.message
    assert "\n" not in e.value.message and SECRET not in e.value.message


def test_an_oauth_error_carries_its_fields(server: TokenServer) -> None:
    server.fault = "error:invalid_client"
    with pytest.raises(JobFailed) as e:
        _fetch(_secret_request(server))
    failure = e.value.result
    assert isinstance(failure, OAuthFailure)
    assert (failure.status, failure.error, failure.trace_id) == (400, "invalid_client", "0b4c1e2a-trace")
    assert failure.error_codes == ("AADSTS7000215",)
    assert e.value.exit_code == 1


@pytest.mark.timeout(10)
@pytest.mark.parametrize("fault", ["stall", "drip"])
def test_a_stalled_or_dripping_endpoint_ends_with_exit_4_within_the_timeout(server: TokenServer, fault: str) -> None:
    server.fault = fault
    started = time.monotonic()
    with pytest.raises(LimitHit) as e:
        _fetch(_secret_request(server), timeout=0.8)
    assert time.monotonic() - started < 2.0
    assert e.value.exit_code == 4 and "within 0.8 s" in e.value.message


@pytest.mark.timeout(10)
def test_a_drip_over_tls_and_a_silent_tls_handshake_end_within_the_timeout(pki: TestCA) -> None:
    import socket

    issued = pki.issue()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(issued.cert_path, issued.key_path)
    trusting = ssl.create_default_context(cadata=pki.root_pem.decode())
    with TokenServer([Client("app", secret=SECRET)], tls_context=server_ctx) as s:
        s.fault = "drip"
        started = time.monotonic()
        with pytest.raises(LimitHit, match="reading the answer"):
            fetch_token(_secret_request(s), context=trusting, timeout=0.8)
        assert time.monotonic() - started < 2.0
    with socket.socket() as silent:  # accepts TCP (the backlog) but never speaks TLS
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"https://127.0.0.1:{silent.getsockname()[1]}/token"
        started = time.monotonic()
        with pytest.raises(LimitHit, match="TLS handshake"):
            fetch_token(
                TokenRequest(Grant.CLIENT_CREDENTIALS, url, "c", client_secret=Secret("x")),
                context=trusting,
                timeout=0.5,
            )
        assert time.monotonic() - started < 1.5


def test_unreachable_endpoint_is_exit_3() -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    request = TokenRequest(Grant.CLIENT_CREDENTIALS, f"http://127.0.0.1:{port}/token", "c", client_secret=Secret("x"))
    with pytest.raises(ConnectFailed) as e:
        _fetch(request)
    assert e.value.exit_code == 3 and "cannot reach" in e.value.message


@pytest.mark.timeout(20)
def test_https_endpoint_verified_with_the_callers_context(pki: TestCA, other_ca: TestCA) -> None:
    issued = pki.issue()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(issued.cert_path, issued.key_path)
    trusting = ssl.create_default_context(cadata=pki.root_pem.decode())
    stranger = ssl.create_default_context(cadata=other_ca.root_pem.decode())
    with TokenServer([Client("app", secret=SECRET)], tls_context=server_ctx) as s:
        request = TokenRequest(Grant.CLIENT_CREDENTIALS, s.url, "app", client_secret=Secret(SECRET))
        assert s.valid(fetch_token(request, context=trusting, timeout=3).access_token.reveal())
        with pytest.raises(ConnectFailed) as e:
            fetch_token(request, context=stranger, timeout=3)
        assert e.value.kind == "trust" and e.value.exit_code == 3
        assert s.hits == 1  # the untrusted attempt sent nothing


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://login.example.com/token", "plain http"),
        ("http://10.0.0.1/token", "plain http"),
        ("ftp://host/token", "must start with https://"),
        ("https://user:pw@host/token", "must not hold a user"),
        ("https://host/token#frag", "#fragment"),
        ("https://host/to ken", "spaces"),
        ("https://host:99999/token", "not a URL"),
        ("", "empty"),
    ],
)
def test_bad_token_urls_are_usage_errors(url: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        check_token_url(url)


def test_loopback_http_and_https_urls_are_accepted() -> None:
    assert check_token_url("http://127.0.0.1:8080/t").port == 8080
    assert check_token_url("http://[::1]:8080/t?p=1").target == "/t?p=1"
    assert check_token_url("https://login.microsoftonline.com/x/oauth2/v2.0/token").port == 443


def test_entra_shortcut() -> None:
    url, scope = entra_endpoint("contoso.onmicrosoft.com")
    assert url == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    assert scope == "https://outlook.office365.com/.default"
    with pytest.raises(UsageError):
        entra_endpoint("../evil")


def test_token_metadata_of_a_jwt_and_of_an_opaque_token(server: TokenServer) -> None:
    server.jwt_tokens = True
    info = token_info(_fetch(_secret_request(server)))
    assert info.audience == "https://outlook.office365.com"
    assert info.app_id == "app-secret" and info.roles == ("SMTP.SendAsApp",)
    assert info.scope == "https://outlook.office365.com/.default" and info.expires_at is not None
    assert set(info.to_json()) == {"expires_at", "scope", "audience", "app_id", "roles"}
    opaque = token_info(Token(Secret("ya29.opaque"), 1000.0, 3600, "https://mail.google.com/"))
    assert (opaque.audience, opaque.app_id, opaque.roles) == (None, None, ())
    assert opaque.expires_at == "1970-01-01T01:16:40+00:00"


def test_static_token_lifetime_from_its_jwt(server: TokenServer) -> None:
    server.jwt_tokens = True
    issued = _fetch(_secret_request(server)).access_token
    token = static_token(issued)
    assert token.expires_in is not None and 3590 < token.expires_in <= 3600
    with pytest.raises(JobFailed, match="cannot be refreshed"):
        fetch_token(TokenRequest(Grant.STATIC, "", ""), context=None, timeout=1)


def test_secrets_never_appear_in_errors_reprs_or_logs(server: TokenServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rt = server.issue_refresh_token("app-secret")
    request = _secret_request(server, grant=Grant.REFRESH_TOKEN, refresh_token=Secret(rt))
    token = _fetch(request)
    assert token.refresh_token is not None
    shown = [repr(request), repr(token), str(token), repr(token_info(token))]
    server.fault = "echo"  # a hostile endpoint echoing the whole form back in its description
    for attempt in (request, _secret_request(server)):
        with pytest.raises(JobFailed) as e:
            _fetch(attempt)
        shown += [e.value.message, str(e.value), repr(e.value), repr(e.value.result)]
        assert "<redacted>" in e.value.message
    shown += [r.getMessage() for r in caplog.records]
    values = [SECRET, rt, token.access_token.reveal(), token.refresh_token.reveal()]
    for text in shown:
        for value in values:
            assert value not in text
