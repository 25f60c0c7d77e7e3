"""The command line itself: global options, usage errors, --version, and the command table."""

from __future__ import annotations

import json
from pathlib import Path

from jcsh.shell.commands import COMMAND_AREAS, specs
from tests.support.cli import jcsh, jcsh_process


def test_every_command_word_maps_to_the_module_that_defines_it() -> None:
    defined = {name.split()[0]: spec.run.__module__.rsplit(".", 1)[1] for name, spec in specs().items()}
    assert defined == COMMAND_AREAS


def test_unknown_command_is_usage_error_listing_choices(home: Path) -> None:
    ran = jcsh(home, "nosuch")
    assert ran.code == 2 and "invalid choice: 'nosuch'" in ran.err and "testmail" in ran.err


def test_usage_error_with_json_is_one_document(home: Path) -> None:
    ran = jcsh(home, "--json", "registry", "get")
    assert ran.code == 2
    assert json.loads(ran.out)["error"]["kind"] == "usage"


def test_global_options_after_the_subcommand(home: Path) -> None:
    jcsh(home, "registry", "set", "/a", "1")
    ran = jcsh(home, "registry", "get", "/a", "--json")
    assert ran.json == {"path": "/a", "value": "1"}


def test_bad_timeout(home: Path) -> None:
    for value in ("abc", "0", "-1", "1e9"):
        ran = jcsh(home, "--timeout", value, "-c", "1")
        assert ran.code == 2 and "--timeout" in ran.err


def test_version_json(home: Path) -> None:
    ran = jcsh_process(home, "--version", "--json")
    doc = json.loads(ran.out)
    assert ran.code == 0 and set(doc) == {"version", "python", "openssl", "sandbox_layers"}
    assert "OpenSSL" in doc["openssl"] and doc["sandbox_layers"][:2] == ["restrictedpython", "process"]


def test_help_lists_every_command(home: Path) -> None:
    ran = jcsh(home, "--help")
    assert ran.code == 0
    for word in COMMAND_AREAS:
        assert word in ran.out


def test_global_timeout_on_a_non_script_command_says_it_is_ignored(home: Path) -> None:
    ran = jcsh(home, "--timeout", "3", "registry", "ls")
    assert ran.code == 0 and "limits scripts only" in ran.err


def test_argparse_strings_are_the_same_with_or_without_the_catalog_lookup() -> None:
    import argparse
    import gettext
    import os
    import subprocess
    import sys

    import jcsh.shell.commands  # noqa: F401  # applies the identity where no catalog can exist

    no_catalogs = not os.path.isdir(gettext.bindtextdomain(gettext.textdomain()))
    assert argparse._ is (str if no_catalogs else gettext.gettext)  # type: ignore[attr-defined]
    for text in ("usage: ", "options", "positional arguments", "show this help message and exit"):
        assert argparse._(text) == gettext.gettext(text)  # type: ignore[attr-defined]
    parse = (
        "import sys\n"
        "from jcsh.shell.cli import build_parser\n"
        "build_parser('testmail').parse_args(['testmail', '--to', 'a@example.test'])\n"
        "print('locale' in sys.modules)\n"
    )
    ran = subprocess.run([sys.executable, "-c", parse], capture_output=True, text=True, timeout=60, check=True)
    assert ran.stdout.strip() == str(not no_catalogs)  # gettext's lookup is what imports locale
