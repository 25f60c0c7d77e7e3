"""Schema versions: a home written by release 0.1.0 opens with every value and secret, migrations
apply on open in one transaction, and a newer schema is refused without being touched."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from jcsh.runtime.credentials import CredentialStore
from jcsh.runtime.errors import StoreError
from jcsh.runtime.registry import open_registry
from jcsh.runtime.store import migrations
from jcsh.runtime.store.migrations import Migration
from tests.support.cli import jcsh, jcsh_process

FIXTURES = Path(__file__).parent / "fixtures"
# What release 0.1.0 was given (tests/fixtures/make_home_0_1_0.py), written out again here on purpose.
ENTRIES = {
    "/configuration/mail/Server": "mail.example.com",
    "/configuration/mail/Port": "587",
    "/configuration/mail/Transport": "smtp",
    "/configuration/mail/From": "jobs@example.com",
    "/configuration/mail/mail.smtp.starttls.enable": "true",
    "/unicode/grüße": "Grüße aus Köln — ☃ 日本語 🚀",
    "/unicode/lines": "first line\n\tsecond, indented\r\nthird",
    "/unicode/empty": "",
    "/unicode/ﬁ-ligature/Ω": "Ω ≠ Ω",
    "/big/value": "x" * 65536,
}
DEEP = "/deep" + "".join(f"/level{i}" for i in range(60))
PASSWORD = "pässwörd ✓ «secret» 🔑"


@pytest.fixture
def old_home(tmp_path: Path) -> Path:
    home = tmp_path / "home-0.1.0"
    shutil.copytree(FIXTURES / "home-0.1.0", home)
    home.chmod(0o700)
    (home / "secret.key").chmod(0o600)  # as 0.1.0 wrote it; git keeps no such mode, a checkout has 0644
    return home


def _version(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_the_fixture_is_what_release_0_1_0_wrote(old_home: Path) -> None:
    assert _version(old_home / "registry.sqlite3") == 0  # 0.1.0 wrote no schema version
    assert not (old_home / "registry.sqlite3-wal").exists()


def test_a_0_1_0_home_opens_with_every_value_and_secret(old_home: Path) -> None:
    ran = jcsh_process(old_home, "--json", "registry", "export")
    assert ran.code == 0 and ran.err == "", ran.err
    flat: dict[str, str | None] = {}

    def walk(node: dict, at: str) -> None:
        for name, child in node["children"].items():
            path = ("" if at == "/" else at) + "/" + name
            flat[path] = child["value"]
            walk(child, path)

    walk(ran.json, "/")
    for path, value in ENTRIES.items():
        assert flat[path] == value, path
    assert flat[DEEP] == "sixty levels down"
    assert {p for p, v in flat.items() if v is not None} == {*ENTRIES, DEEP}
    assert _version(old_home / "registry.sqlite3") == migrations.latest_version()

    store = CredentialStore(open_registry(old_home), old_home)
    assert store.protocols() == ["X509_TrustedCertificate", "smtp"]
    smtp = store.find("smtp", "mail.example.com", "default")
    assert smtp is not None and smtp.real_user == "jobs@example.com"
    assert store.secret(smtp).reveal() == PASSWORD
    [ca] = store.trusted_certificates()
    assert ca.certificate == (FIXTURES / "home-0.1.0-ca.pem").read_text()
    assert jcsh(old_home, "registry", "check").code == 0
    # and it keeps working: a write, a rekey, the secret still there
    assert jcsh(old_home, "registry", "set", "/after/upgrade", "yes").code == 0
    assert jcsh(old_home, "credential", "rekey").code == 0
    fresh = CredentialStore(open_registry(old_home), old_home)
    assert fresh.secret(smtp).reveal() == PASSWORD


def test_migrations_apply_on_open_in_one_transaction(old_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = old_home / "registry.sqlite3"
    known = migrations.MIGRATIONS
    n = migrations.latest_version()
    added = Migration(
        n + 1,
        "credentials gain a flag (an example of a later release's migration)",
        ("ALTER TABLE credential ADD COLUMN example_flag INTEGER NOT NULL DEFAULT 0",),
    )
    broken = Migration(n + 2, "a migration that fails half-way", ("CREATE TABLE half (x)", "CREATE TABLE half (x)"))
    before = db.read_bytes()
    monkeypatch.setattr(migrations, "MIGRATIONS", (*known, added, broken))
    with pytest.raises(StoreError) as refused:
        open_registry(old_home)
    assert refused.value.exit_code == 74
    assert db.read_bytes() == before  # neither the known versions nor the first half of the broken one stayed
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None
    conn.close()

    monkeypatch.setattr(migrations, "MIGRATIONS", (*known, added))
    registry = open_registry(old_home)
    registry.close()
    conn = sqlite3.connect(db)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(credential)")]
    conn.close()
    assert "example_flag" in columns and "allow_plaintext" in columns and _version(db) == n + 1
    assert open_registry(old_home).value("/unicode/grüße") == ENTRIES["/unicode/grüße"]
    # The program that knows only the released versions now refuses this home, and leaves it alone.
    monkeypatch.setattr(migrations, "MIGRATIONS", known)
    newer = db.read_bytes()
    with pytest.raises(StoreError, match=rf"written by a newer release of jcsh \(schema version {n + 1}; this release"):
        open_registry(old_home)
    assert db.read_bytes() == newer


def test_a_new_home_gets_the_latest_schema(home: Path) -> None:
    assert jcsh(home, "registry", "set", "/a", "1").code == 0
    assert _version(home / "registry.sqlite3") == migrations.latest_version()


def test_a_0_1_0_home_gains_oauth_credentials_and_a_token_cache(old_home: Path) -> None:
    from jcsh.runtime.credentials import CachedToken, CredentialKind, OAuthClient, Secret

    store = CredentialStore(open_registry(old_home), old_home)
    client = OAuthClient("refresh-token", "http://127.0.0.1:9/token", "app-id", "scope-a", ())
    added = store.add_oauth(
        "smtp", "oauth.example.com", "default", client, {"refresh_token": "rt-1"}, real_user="jobs@example.com"
    )
    assert added.kind is CredentialKind.OAUTH2 and added.oauth is not None and added.oauth.holds == ("refresh_token",)
    store.store_token(added, CachedToken(Secret("at-1"), 1000.0, 3600, "scope-a"), rotated_refresh=Secret("rt-2"))
    again = CredentialStore(open_registry(old_home), old_home)
    [old] = [c for c in again.list("smtp") if c.endpoint != "oauth.example.com"]
    assert old.kind is CredentialKind.PASSWORD and again.secret(old).reveal() == PASSWORD
    [ca] = again.trusted_certificates()
    assert ca.kind is CredentialKind.CERTIFICATE
    oauth = again.find("smtp", "oauth.example.com", "default")
    assert oauth is not None and again.oauth_secrets(oauth)["refresh_token"].reveal() == "rt-2"
    cached = again.cached_token(oauth)
    assert cached is not None and cached.access_token.reveal() == "at-1" and cached.expires_in == 3600
    raw = (old_home / "registry.sqlite3").read_bytes()
    assert b"rt-1" not in raw and b"rt-2" not in raw and b"at-1" not in raw
    assert jcsh(old_home, "credential", "rekey").code == 0
    rekeyed = CredentialStore(open_registry(old_home), old_home)
    token = rekeyed.cached_token(oauth)
    assert token is not None and token.access_token.reveal() == "at-1"
