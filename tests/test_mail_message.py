"""build_message: headers, Bcc, bodies, attachments and the AccessiblePath policy (no network)."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path
from typing import Any

import pytest

from jcsh.runtime.errors import JobFailed, UsageError
from jcsh.runtime.mail.message import MailRequest, build_message, parse_address
from jcsh.runtime.mail.settings import load_settings
from tests.support.mailconf import MAIL, configure_mail, write


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "allowed"
    folder.mkdir()
    return folder


@pytest.fixture
def settings(registry, credentials, files):
    configure_mail(registry, 2525, AccessiblePath=str(files))
    return load_settings(registry, credentials)


def parsed(built) -> email.message.EmailMessage:
    return email.message_from_bytes(built.as_bytes(), policy=policy.default)


def test_headers_envelope_and_bcc_only_in_envelope(settings) -> None:
    built = build_message(
        settings,
        MailRequest(
            to=["Ann <ann@example.test>"],
            cc=["cc@example.test"],
            bcc=["hidden@example.test", "ann@example.test"],
            subject="Hello",
            body="text body",
            headers={"X-Ticket": "42"},
        ),
    )
    msg = parsed(built)
    assert msg["From"] == "jcsh@example.test"
    assert msg["To"] == "Ann <ann@example.test>"
    assert msg["Cc"] == "cc@example.test"
    assert msg["X-Ticket"] == "42"
    assert msg["Date"] and msg["Message-ID"] == built.message_id
    assert built.message_id.endswith("@example.test>")
    assert "Bcc" not in msg and b"hidden@example.test" not in built.as_bytes()
    assert built.recipients == ["ann@example.test", "cc@example.test", "hidden@example.test"]
    assert built.envelope_from == "jcsh@example.test"
    assert msg.get_content().strip() == "text body"


def test_from_override_and_envelope_from_property(registry, credentials, files) -> None:
    configure_mail(registry, 2525, **{"mail.smtp.from": "bounces@example.test"})
    settings = load_settings(registry, credentials)
    built = build_message(settings, MailRequest(to=["a@example.test"], from_="Ops <ops@example.test>"))
    assert parsed(built)["From"] == "Ops <ops@example.test>"
    assert built.envelope_from == "bounces@example.test"


def test_html_alternative_and_non_ascii_subject(settings) -> None:
    built = build_message(
        settings, MailRequest(to=["a@example.test"], subject="Größe ✓", body="plain", html="<p>rich</p>")
    )
    raw = built.as_bytes()
    assert raw.isascii()  # encoded words and transfer encodings, no 8-bit header bytes
    msg = parsed(built)
    assert msg["Subject"] == "Größe ✓"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize(
    "field,value",
    [
        ("subject", "hi\r\nBcc: evil@example.test"),
        ("subject", "hi\nX-Evil: 1"),
        ("to", ["a@example.test\r\nBcc: evil@example.test"]),
        ("from_", "x@example.test\nBcc: evil@example.test"),
        ("headers", {"X-Note": "ok\r\nBcc: evil@example.test"}),
        ("headers", {"Bad Name": "v"}),
        ("headers", {"Bcc": "evil@example.test"}),
    ],
)
def test_header_injection_is_refused(settings, field: str, value: Any) -> None:
    request = MailRequest(to=["a@example.test"])._replace(**{field: value})
    with pytest.raises(UsageError):
        build_message(settings, request)


@pytest.mark.parametrize("value", ["0@", "a@b.test,,<"])
def test_an_extra_address_header_that_does_not_parse_is_a_usage_error(settings, value: str) -> None:
    # email's address parser raised IndexError here: the script failed as a job (exit 1), not as bad input.
    request = MailRequest(to=["a@example.test"], headers={"Reply-To": value})
    with pytest.raises(UsageError, match="Reply-To"):
        build_message(settings, request)


@pytest.mark.parametrize(
    "text",
    [
        "plainword",
        "a@",
        "@example.test",
        "a b@example.test",
        "a@b.test, c@d.test",
        "<>",
        "x@y.",
        "group: a@b.test;",
        "",
    ],
)
def test_unparseable_addresses_are_usage_errors(settings, text: str) -> None:
    with pytest.raises(UsageError) as caught:
        build_message(settings, MailRequest(to=[text]))
    assert caught.value.exit_code == 2


def test_parse_address_accepts_usual_forms() -> None:
    for text in ["a@example.test", "Ann Example <ann@example.test>", '"x y"@example.test', "a@[127.0.0.1]"]:
        address, utf8 = parse_address(text)
        assert address.username and address.domain and not utf8
    assert parse_address("jörg@example.test")[1] is True  # needs SMTPUTF8


def test_no_recipient_and_no_sender_are_usage_errors(registry, credentials) -> None:
    registry.set(f"{MAIL}/Server", "127.0.0.1")
    settings = load_settings(registry, credentials)
    with pytest.raises(UsageError, match="From"):
        build_message(settings, MailRequest(to=["a@example.test"]))
    with pytest.raises(UsageError, match="recipient"):
        build_message(settings, MailRequest(to=[], from_="a@example.test"))


def test_attachment_inside_accessible_path_with_guessed_type(settings, files: Path) -> None:
    pdf = write(files / "report.pdf", b"%PDF-1.4 fake")
    csv = write(files / "sub" / "data.csv", b"a,b\n1,2\n")
    blob = write(files / "blob.unknownext", b"\x00\x01")
    built = build_message(settings, MailRequest(to=["a@example.test"], attachments=[str(pdf), str(csv), str(blob)]))
    parts = {p.get_filename(): p for p in parsed(built).iter_attachments()}
    assert parts["report.pdf"].get_content_type() == "application/pdf"
    assert parts["report.pdf"].get_content() == b"%PDF-1.4 fake"
    assert parts["data.csv"].get_content_type() == "text/csv"
    assert parts["blob.unknownext"].get_content_type() == "application/octet-stream"


def test_attachment_outside_accessible_path_refused(settings, tmp_path: Path) -> None:
    outside = write(tmp_path / "secret.txt", b"not for mail")
    with pytest.raises(JobFailed, match="outside AccessiblePath"):
        build_message(settings, MailRequest(to=["a@example.test"], attachments=[str(outside)]))


def test_symlink_inside_pointing_outside_is_refused(settings, files: Path, tmp_path: Path) -> None:
    outside = write(tmp_path / "etc-passwd-like", b"root:x:0:0")
    link = files / "innocent.txt"
    link.symlink_to(outside)
    dotdot = files / ".." / "etc-passwd-like"
    for path in (link, dotdot):
        with pytest.raises(JobFailed, match="outside AccessiblePath"):
            build_message(settings, MailRequest(to=["a@example.test"], attachments=[str(path)]))


def test_missing_attachment_refused_by_default(settings, files: Path) -> None:
    with pytest.raises(JobFailed, match="does not exist"):
        build_message(settings, MailRequest(to=["a@example.test"], attachments=[str(files / "nope.pdf")]))


def test_skip_sends_without_the_attachment_and_warns(registry, credentials, files, tmp_path) -> None:
    configure_mail(registry, 2525, AccessiblePath=str(files), AttachmentError="Skip")
    settings = load_settings(registry, credentials)
    good = write(files / "ok.txt", b"fine")
    outside = write(tmp_path / "outside.txt", b"nope")
    built = build_message(
        settings, MailRequest(to=["a@example.test"], attachments=[str(good), str(outside), str(files / "missing.txt")])
    )
    assert [p.get_filename() for p in parsed(built).iter_attachments()] == ["ok.txt"]
    assert len(built.warnings) == 2
    assert "outside AccessiblePath" in built.warnings[0] and "Skip" in built.warnings[0]
    assert "does not exist" in built.warnings[1]


def test_accessible_path_defaults_to_the_working_folder(registry, credentials, tmp_path) -> None:
    configure_mail(registry, 2525)
    here = tmp_path / "cwd"
    inside = write(here / "in.txt", b"in")
    outside = write(tmp_path / "out.txt", b"out")
    settings = load_settings(registry, credentials, cwd=here)
    build_message(settings, MailRequest(to=["a@example.test"], attachments=[str(inside)]))
    with pytest.raises(JobFailed):
        build_message(settings, MailRequest(to=["a@example.test"], attachments=[str(outside)]))
