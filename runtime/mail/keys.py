"""The mail registry keys and JavaMail property names, and what is wrong with names alone."""

from __future__ import annotations

from enum import StrEnum

from jcsh.runtime.records import NamedTuple

__all__ = [
    "Level",
    "Problem",
    "MAIL",
    "VERIFY_KEY",
    "KEYS",
    "KNOWN_PROPERTIES",
    "children",
    "key_problems",
    "property_problems",
]

MAIL = "/configuration/mail"
VERIFY_KEY = "/configuration/jcs/TLS/VerifyServerCertificateTrust"
KEYS = (
    "Server",
    "Transport",
    "Port",
    "From",
    "User",
    "AttachmentError",
    "ConnectionSecurity",
    "AccessiblePath",
    "SendPartial",
    "JavaMail",
)
# JavaMail properties jcsh understands, after the `mail.<transport>.` prefix.
KNOWN_PROPERTIES = (
    "port",
    "connectiontimeout",
    "timeout",
    "writetimeout",
    "from",
    "localhost",
    "auth",
    "sendpartial",
    "starttls.enable",
    "starttls.enabled",
    "starttls.required",
    "ssl.enable",
    "ssl.trust",
    "ssl.checkserveridentity",
    "ssl.protocols",
    "host",
    # SASL: the mechanisms to consider, in order, and JavaMail's switches per mechanism
    "auth.mechanisms",
    "auth.login.disable",
    "auth.plain.disable",
    "auth.digest-md5.disable",
    "auth.ntlm.disable",
    "auth.xoauth2.disable",
)


class Level(StrEnum):
    """How serious a finding of the doctor (or a problem of the settings) is, most serious first."""

    ERROR = "error"  # the configuration cannot send as it is: the doctor exits 1
    WARNING = "warning"  # it sends, but not as the user probably means
    NOTE = "note"  # worth knowing


class Problem(NamedTuple):
    """Something wrong or notable in the configuration; `fatal` ones make load_settings raise."""

    level: Level
    keys: tuple[str, ...]
    message: str
    fix: str
    fatal: bool = False


def children(entries: dict[str, str | None], path: str) -> list[str]:
    """The direct children of path among the entries, sorted."""
    depth = path.count("/") + 1
    return sorted(p for p in entries if p.startswith(path + "/") and p.count("/") == depth)


def key_problems(entries: dict[str, str | None]) -> list[Problem]:
    """Children of /configuration/mail that look like misspelt keys, and stray entries in scopes."""
    found = []
    lower = {k.lower(): k for k in KEYS}
    for path in children(entries, MAIL):
        name = path.rsplit("/", 1)[1]
        if name in KEYS:
            continue
        if name.lower() in lower:
            right = f"{MAIL}/{lower[name.lower()]}"
            found.append(
                Problem(
                    Level.WARNING,
                    (path,),
                    f"{path} is taken for a server scope; did you mean {right}? (registry paths are case-sensitive)",
                    f"jcsh registry rm -r {path}, then set {right}",
                )
            )
        elif entries.get(path) is not None and not children(entries, path):
            found.append(
                Problem(
                    Level.WARNING,
                    (path,),
                    f"{path} is not a mail key; it is taken for an empty server scope and its value is ignored",
                    f"jcsh registry rm {path}",
                )
            )
        for child in children(entries, path):
            if child.rsplit("/", 1)[1] not in KEYS:
                found.append(
                    Problem(
                        Level.WARNING,
                        (child,),
                        f"{child} is not a mail key and is ignored",
                        f"jcsh registry rm -r {child}",
                    )
                )
    return found


def property_problems(props: dict[str, tuple[str, str]], transport: str, transport_origin: str) -> list[Problem]:
    """Properties without effect: mail.<t>.host, the other transport's names, unknown names.

    props maps a property name to (value, registry path).
    """
    found = []
    prefix = f"mail.{transport}."
    other = "mail.smtps." if transport == "smtp" else "mail.smtp."
    for name, (_value, origin) in sorted(props.items()):
        suffix = name[len(prefix) :] if name.startswith(prefix) else None
        if suffix == "host":
            found.append(
                Problem(
                    Level.WARNING,
                    (origin,),
                    f"{origin} has no effect: {MAIL}/Server decides the server",
                    f"jcsh registry rm {origin}",
                )
            )
        elif suffix in KNOWN_PROPERTIES:
            continue
        elif name.startswith(other) and name[len(other) :] in KNOWN_PROPERTIES:
            found.append(
                Problem(
                    Level.WARNING,
                    (origin, transport_origin),
                    f"{origin} is ignored: Transport is {transport}, which reads only {prefix}* properties",
                    f"rename it to {prefix}{name[len(other) :]}, or set Transport to {other.split('.')[1]}",
                )
            )
        else:
            found.append(
                Problem(
                    Level.WARNING,
                    (origin,),
                    f"{origin}: unknown JavaMail property {name!r}, kept but it has no effect in jcsh",
                    f"check the spelling, or jcsh registry rm {origin}",
                )
            )
    return found
