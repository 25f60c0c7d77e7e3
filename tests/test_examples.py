"""Every saved script in examples/ runs as it is."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jcsh.runtime.registry import Registry
from jcsh.runtime.sink import Sink, SinkConfig
from tests.support.cli import JCSH, jcsh, jcsh_process

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_every_example_is_covered() -> None:
    tested = {"configure_gmail.jcs", "send_testmail.jcs", "registry_tree.jcs", "tls_protocols.jcs"}
    assert {p.name for p in EXAMPLES.glob("*.jcs")} == tested


def test_every_example_says_which_permission_it_needs() -> None:
    for example in EXAMPLES.glob("*.jcs"):
        text = example.read_text()
        header = "".join(line for line in text.splitlines(True) if line.startswith("#"))
        changes = "/configuration/mail" in text or "/configuration/jcs" in text or "credentials.add" in text
        assert ("Needs --allow-config" in header) == changes, example.name
        assert ("jcsh --allow-config run" in header) == changes, example.name


@pytest.mark.timeout(30)
def test_configure_gmail(home: Path) -> None:
    refused = jcsh_process(home, "run", str(EXAMPLES / "configure_gmail.jcs"), "ops@example.test")
    assert refused.code == 77 and refused.out == ""
    assert refused.err.strip().endswith(
        "registry.set('/configuration/mail/smtp.gmail.com/JavaMail/mail.smtp.starttls.required') needs --allow-config"
    )
    ran = jcsh_process(home, "--allow-config", "run", str(EXAMPLES / "configure_gmail.jcs"), "ops@example.test")
    assert ran.code == 0, ran.err
    lines = dict(line.split(None, 1) for line in ran.out.splitlines())
    assert lines["security"].split() == [
        "STARTTLSRequired",
        "/configuration/mail/smtp.gmail.com/JavaMail/mail.smtp.starttls.required",
    ]
    assert lines["port"].split() == ["587", "default"]
    assert lines["server"].split()[0] == "smtp.gmail.com"


@pytest.mark.timeout(30)
def test_send_testmail(home: Path, registry: Registry) -> None:
    with Sink(SinkConfig(port=0)) as sink:
        registry.set("/configuration/mail/Server", "127.0.0.1")
        registry.set("/configuration/mail/Port", str(sink.port))
        registry.set("/configuration/mail/Transport", "smtp")
        registry.set("/configuration/mail/From", "jobs@example.test")
        ran = jcsh_process(home, "run", str(EXAMPLES / "send_testmail.jcs"), "ops@example.test")
        assert ran.code == 0, ran.err
        assert "status    sent" in ran.out and "accepted  ops@example.test" in ran.out
        [message] = sink.wait_for(1)
        assert message.rcpt_tos == ["ops@example.test"]
    usage = jcsh_process(home, "run", str(EXAMPLES / "send_testmail.jcs"))
    assert usage.code == 2 and "usage:" in usage.err


@pytest.mark.timeout(30)
def test_send_testmail_reports_the_failed_step(home: Path, registry: Registry) -> None:
    with Sink(SinkConfig(port=0, fail={"rcpt": 550})) as sink:
        registry.set("/configuration/mail/Server", "127.0.0.1")
        registry.set("/configuration/mail/Port", str(sink.port))
        registry.set("/configuration/mail/Transport", "smtp")
        registry.set("/configuration/mail/From", "jobs@example.test")
        ran = jcsh_process(home, "run", str(EXAMPLES / "send_testmail.jcs"), "ops@example.test")
    assert ran.code == 1
    assert "refused   ops@example.test: 550" in ran.out
    assert sink.messages == []


@pytest.mark.timeout(30)
def test_registry_tree(home: Path, registry: Registry) -> None:
    registry.set("/configuration/mail/Server", "smtp.example.test")
    ran = jcsh_process(home, "run", str(EXAMPLES / "registry_tree.jcs"), "/configuration")
    assert ran.out.splitlines() == ["/configuration", "  mail", "    Server = smtp.example.test"]
    missing = jcsh_process(home, "run", str(EXAMPLES / "registry_tree.jcs"), "/nowhere")
    assert missing.code == 1 and missing.out == ""
    assert missing.err == "no registry entry at /nowhere (see `jcsh registry ls /`)\n"


@pytest.mark.timeout(30)
def test_tls_protocols_matches_the_command(home: Path) -> None:
    script = jcsh_process(home, "run", str(EXAMPLES / "tls_protocols.jcs"))
    command = jcsh_process(home, "tls", "protocols")
    assert script.code == command.code == 0
    assert script.out == command.out and script.out.startswith("TLSv1.3 TLSv1.2")


# -- `jcsh examples`: list and copy the installed examples -------------------------------------


def test_examples_lists_every_installed_script(home: Path) -> None:
    ran = jcsh(home, "examples")
    assert ran.code == 0
    names = [line.split()[0] for line in ran.out.splitlines()]
    assert names == sorted(p.stem for p in EXAMPLES.glob("*.jcs"))
    assert "send_testmail    Send a test mail with the configured mail module" in ran.out
    doc = jcsh(home, "examples", "--json").json
    assert {e["name"]: e["usage"] for e in doc["examples"]}["registry_tree"].startswith(
        "jcsh run examples/registry_tree.jcs [PATH]"
    )


@pytest.mark.timeout(30)
def test_examples_copies_into_the_current_folder_and_the_copy_runs(home: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "JCSH_HOME": str(home)}
    copied = subprocess.run([*JCSH, "examples", "tls_protocols"], cwd=work, capture_output=True, text=True, env=env)
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.startswith("tls_protocols.jcs\n")
    assert (work / "tls_protocols.jcs").read_bytes() == (EXAMPLES / "tls_protocols.jcs").read_bytes()
    ran = jcsh_process(home, "run", str(work / "tls_protocols.jcs"))
    assert ran.code == 0 and ran.out.startswith("TLSv1.3")


def test_examples_copies_into_a_folder_by_name_with_or_without_jcs(home: Path, tmp_path: Path) -> None:
    ran = jcsh(home, "examples", "registry_tree.jcs", str(tmp_path), "--json")
    assert ran.code == 0
    assert ran.json == {"name": "registry_tree", "path": str(tmp_path / "registry_tree.jcs"), "replaced": False}


def test_examples_unknown_name_is_a_usage_error_naming_the_choices(home: Path, tmp_path: Path) -> None:
    ran = jcsh(home, "examples", "nosuch", str(tmp_path))
    assert ran.code == 2 and ran.out == ""
    assert ran.err == (
        "jcsh: no example named 'nosuch'; examples: configure_gmail, registry_tree, send_testmail, tls_protocols\n"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]
    assert jcsh(home, "examples", "--force").code == 2  # --force without a NAME


def test_examples_never_overwrites_without_force(home: Path, tmp_path: Path) -> None:
    mine = tmp_path / "send_testmail.jcs"
    mine.write_text("# my edited copy\n")
    ran = jcsh(home, "examples", "send_testmail", str(tmp_path))
    assert ran.code == 1 and "exists; nothing was written (--force replaces it)" in ran.err
    assert mine.read_text() == "# my edited copy\n"
    forced = jcsh(home, "examples", "send_testmail", str(tmp_path), "--force", "--json")
    assert forced.code == 0 and forced.json["replaced"] is True
    assert mine.read_bytes() == (EXAMPLES / "send_testmail.jcs").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "send_testmail.jcs"]  # no temporary left


def test_examples_bad_folders(home: Path, tmp_path: Path) -> None:
    missing = jcsh(home, "examples", "send_testmail", str(tmp_path / "nowhere"))
    assert missing.code == 2 and missing.err == f"jcsh: folder {tmp_path / 'nowhere'} does not exist\n"
    a_file = tmp_path / "file"
    a_file.write_text("")
    ran = jcsh(home, "examples", "send_testmail", str(a_file))
    assert ran.code == 2 and ran.err == f"jcsh: {a_file} is not a folder\n"


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount a small tmpfs with the given options (root only); unmounted afterwards."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        where = tmp_path / f"mnt{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_examples_read_only_folder_is_refused(home: Path, tmpfs: Callable[[str], Path]) -> None:
    folder = tmpfs("ro,size=64k")
    ran = jcsh(home, "examples", "send_testmail", str(folder))
    assert ran.code == 2
    assert ran.err == f"jcsh: cannot write {folder / 'send_testmail.jcs'}: Read-only file system\n"


def test_examples_full_disk_leaves_no_partial_file(home: Path, tmpfs: Callable[[str], Path]) -> None:
    folder = tmpfs("size=4k")
    with open(folder / "filler", "wb") as f:
        try:
            f.write(b"x" * 65536)
        except OSError:
            pass
    ran = jcsh(home, "examples", "send_testmail", str(folder))
    assert ran.code == 1 and "No space left on device" in ran.err and "Traceback" not in ran.err
    assert not (folder / "send_testmail.jcs").exists()
