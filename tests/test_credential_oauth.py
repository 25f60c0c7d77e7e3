"""`credential add --oauth2`: each grant stored offline, shown without secrets, bad input refused (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jcsh.runtime.credentials import CredentialStore
from jcsh.runtime.registry import open_registry
from tests.support.cli import Ran, jcsh
from tests.support.oauth_server import rsa_client_certificate

ID = ("--protocol", "smtp", "--endpoint", "smtp.office365.com", "--virtual-user", "default")
SECRET = "client-secret-Zq81"
REFRESH = "refresh-token-Kx42"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    assert jcsh(home, "credential", "protocol", "add", "smtp").code == 0
    return home


def _add(home: Path, *extra: str, stdin: str = "") -> Ran:
    return jcsh(home, "credential", "add", *ID, "--real-user", "jobs@contoso.example", *extra, stdin=stdin)


def test_each_grant_is_stored_offline_and_listed_without_secrets(home: Path, tmp_path: Path) -> None:
    # Nothing listens on port 9: `credential add` must not try to reach the endpoint.
    url = "http://127.0.0.1:9/token"
    ran = _add(
        home,
        "--oauth2",
        "client-credentials",
        "--entra-tenant",
        "contoso.example",
        "--client-id",
        "app-1",
        "--client-secret-stdin",
        stdin=SECRET + "\n",
    )
    assert ran.code == 0, ran.err
    cert, key = rsa_client_certificate()
    (tmp_path / "app.pem").write_text(cert)
    (tmp_path / "app.key").write_text(key)
    ran = jcsh(
        home,
        "credential",
        "add",
        "--protocol",
        "smtp",
        "--endpoint",
        "cert.example",
        "--virtual-user",
        "default",
        "--oauth2",
        "client-credentials",
        "--token-url",
        url,
        "--client-id",
        "app-2",
        "--client-certificate",
        str(tmp_path / "app.pem"),
        "--client-key",
        str(tmp_path / "app.key"),
    )
    assert ran.code == 0, ran.err
    ran = jcsh(
        home,
        "credential",
        "add",
        "--protocol",
        "smtp",
        "--endpoint",
        "smtp.gmail.com",
        "--virtual-user",
        "default",
        "--oauth2",
        "refresh-token",
        "--google",
        "--client-id",
        "app-3",
        "--refresh-token-stdin",
        stdin=f"{REFRESH}\n{SECRET}\n",
    )
    assert ran.code == 0, ran.err
    listed = {c["endpoint"]: c for c in jcsh(home, "--json", "credential", "ls").json["credentials"]}
    office = listed["smtp.office365.com"]["oauth2"]
    assert office == {
        "grant": "client-credentials",
        "token_url": "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token",
        "client_id": "app-1",
        "scope": "https://outlook.office365.com/.default",
        "holds": ["client_secret"],
    }
    assert listed["cert.example"]["oauth2"]["holds"] == ["client_key"] and listed["cert.example"]["has_certificate"]
    gmail = listed["smtp.gmail.com"]["oauth2"]
    assert gmail["scope"] == "https://mail.google.com/" and gmail["holds"] == ["client_secret", "refresh_token"]
    text = jcsh(home, "credential", "ls").out
    assert (
        "oauth2 refresh-token" in text and "client id app-3" in text and "https://oauth2.googleapis.com/token" in text
    )
    store = CredentialStore(open_registry(home), home)
    found = store.find("smtp", "smtp.gmail.com", "default")
    assert found is not None
    assert {k: v.reveal() for k, v in store.oauth_secrets(found).items()} == {
        "refresh_token": REFRESH,
        "client_secret": SECRET,
    }
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and REFRESH.encode() not in data and b"PRIVATE KEY" not in data, path


@pytest.mark.parametrize(
    ("extra", "stdin", "said"),
    [
        (
            (
                "--oauth2",
                "client-credentials",
                "--token-url",
                "http://login.example.com/t",
                "--client-id",
                "a",
                "--client-secret-stdin",
            ),
            "s\n",
            "plain http",
        ),
        (
            (
                "--oauth2",
                "client-credentials",
                "--token-url",
                "ftp://127.0.0.1/t",
                "--client-id",
                "a",
                "--client-secret-stdin",
            ),
            "s\n",
            "must start with https://",
        ),
        (
            ("--oauth2", "client-credentials", "--token-url", "https://l.example/t", "--client-secret-stdin"),
            "s\n",
            "needs --client-id",
        ),
        (
            (
                "--oauth2",
                "client-credentials",
                "--token-url",
                "https://l.example/t",
                "--client-id",
                "a",
                "--client-secret-stdin",
                "--client-certificate",
                "a.pem",
                "--client-key",
                "a.key",
            ),
            "s\n",
            "not both",
        ),
        (
            ("--oauth2", "client-credentials", "--token-url", "https://l.example/t", "--client-id", "a"),
            "",
            "needs --client-secret-stdin",
        ),
        (("--oauth2", "client-credentials", "--client-id", "a", "--client-secret-stdin"), "s\n", "needs --token-url"),
        (
            (
                "--oauth2",
                "client-credentials",
                "--google",
                "--entra-tenant",
                "t",
                "--client-id",
                "a",
                "--client-secret-stdin",
            ),
            "s\n",
            "give one",
        ),
        (
            (
                "--oauth2",
                "client-credentials",
                "--entra-tenant",
                "bad tenant!",
                "--client-id",
                "a",
                "--client-secret-stdin",
            ),
            "s\n",
            "not a tenant",
        ),
        (
            ("--oauth2", "refresh-token", "--google", "--client-id", "a", "--client-secret-stdin"),
            "s\n",
            "does not go with --oauth2 refresh-token",
        ),
        (("--oauth2", "refresh-token", "--google", "--client-id", "a", "--refresh-token-stdin"), "", "holds no"),
        (("--oauth2", "static", "--token-stdin"), "bad token with spaces\n", "access token"),
        (("--oauth2", "static", "--token-url", "https://l.example/t", "--token-stdin"), "t\n", "does not go with"),
        (
            (
                "--oauth2",
                "client-credentials",
                "--token-url",
                "https://l.example/t",
                "--client-id",
                "a",
                "--client-secret-stdin",
                "--password-stdin",
            ),
            "s\n",
            "no password",
        ),
        (("--password-stdin", "--client-id", "a"), "pw\n", "belongs to an OAuth 2.0 credential"),
        (
            (
                "--oauth2",
                "implicit",
            ),
            "",
            "invalid choice",
        ),
    ],
)
def test_bad_oauth_input_is_refused_and_nothing_is_stored(
    home: Path, extra: tuple[str, ...], stdin: str, said: str
) -> None:
    ran = _add(home, *extra, stdin=stdin)
    assert ran.code == 2 and said in ran.err, ran.err
    assert ran.err.splitlines()[-1].startswith("jcsh: ") and "Traceback" not in ran.err
    assert jcsh(home, "--json", "credential", "ls").json == {"credentials": []}


def test_allow_plaintext_is_stored_and_shown(home: Path) -> None:
    ran = _add(home, "--password-stdin", "--allow-plaintext", stdin="pw\n")
    assert ran.code == 0, ran.err
    assert jcsh(home, "--json", "credential", "ls").json["credentials"][0]["allow_plaintext"] is True
    assert "allowed over plain text" in jcsh(home, "credential", "ls").out


def test_credential_add_help_documents_every_grant(home: Path) -> None:
    text = jcsh(home, "credential", "add", "--help").out
    for word in (
        "client-credentials",
        "refresh-token",
        "static",
        "--entra-tenant",
        "--google",
        "--client-key",
        "--refresh-token-stdin",
        "--token-stdin",
        "--allow-plaintext",
    ):
        assert word in text


def test_the_doctor_reads_the_credential_kind(home: Path) -> None:
    for key, value in (("Server", "smtp.office365.com"), ("Transport", "smtp"), ("From", "jobs@contoso.example")):
        assert jcsh(home, "registry", "set", f"/configuration/mail/{key}", value).code == 0
    assert _add(home, "--password-stdin", stdin="pw\n").code == 0
    with_password = jcsh(home, "mail", "doctor")
    assert "Basic auth" in with_password.out + with_password.err
    oauth = ("--oauth2", "client-credentials", "--entra-tenant", "contoso.example", "--client-id", "app-1")
    assert _add(home, *oauth, "--client-secret-stdin", "--replace", stdin="s\n").code == 0
    with_oauth = jcsh(home, "mail", "doctor")
    assert "Basic auth" not in with_oauth.out + with_oauth.err


def test_credential_token_shows_metadata_never_the_token(home: Path) -> None:
    import base64
    import json
    import time

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {
        "aud": "https://outlook.office365.com",
        "appid": "app-9",
        "roles": ["SMTP.SendAsApp"],
        "exp": int(time.time()) + 3600,
    }
    jwt = f"{part({'alg': 'none'})}.{part(claims)}.sig"
    assert _add(home, "--oauth2", "static", "--token-stdin", stdin=jwt + "\n").code == 0
    ran = jcsh(home, "--json", "credential", "token", "--endpoint", "smtp.office365.com")
    assert ran.code == 0, ran.err
    assert set(ran.json) == {"expires_at", "scope", "audience", "app_id", "roles"}
    assert ran.json["audience"] == "https://outlook.office365.com" and ran.json["roles"] == ["SMTP.SendAsApp"]
    human = jcsh(home, "credential", "token", "--endpoint", "smtp.office365.com")
    assert "app id:     app-9" in human.out and jwt not in human.out + ran.out
    assert jcsh(home, "credential", "token", "--endpoint", "nowhere.example").code == 1
    assert jcsh(home, "credential", "token", "--endpoint", "smtp.office365.com", "--timeout", "-1").code == 2
    jcsh(
        home,
        "credential",
        "add",
        "--protocol",
        "smtp",
        "--endpoint",
        "pw.example",
        "--virtual-user",
        "default",
        "--password-stdin",
        stdin="pw\n",
    )
    password = jcsh(home, "credential", "token", "--endpoint", "pw.example")
    assert password.code == 2 and "not an OAuth 2.0 client" in password.err
