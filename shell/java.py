"""RedwoodScript (Java) pasted into jcsh: a hint when it fails to compile, and the product's snippets ported.

The product's Scripting > Shell runs Java; its documentation's snippets are what people paste
first. Only looked at after a script failed to compile, so it costs nothing otherwise.
"""

from __future__ import annotations

import re

from jcsh.runtime.records import NamedTuple

__all__ = ["JavaHint", "java_hint", "looks_like_java", "TLS_PROTOCOLS_PYTHON", "HINT"]

HINT = (
    "hint: this looks like Java (the product's RedwoodScript); jcsh scripts are Python: "
    "`from a.b import C` for `import a.b.C;`, `x = ...` without a type, no `;` or braces "
    "(`jcsh examples` has ported scripts)"
)

# The documented snippet's Python form (examples/tls_protocols.jcs holds the same code).
TLS_PROTOCOLS_PYTHON = """\
from javax.net.ssl import SSLContext

protocols = " ".join(SSLContext.getDefault().getSupportedSSLParameters().getProtocols())
jcsOut.println(protocols)
"""

_IMPORT = re.compile(r"^\s*import\s+(static\s+)?[\w.]+(\.\*)?\s*;\s*$", re.M)
_TYPED = re.compile(
    r"^\s*(?:final\s+)?(?:[A-Z]\w*|int|long|boolean|double|float|char|byte|short|var)(?:<[^>\n]*>)?(?:\[\])*"
    r"\s+[A-Za-z_]\w*\s*(?:=|;)",
    re.M,
)
_SEMICOLON_END = re.compile(r";\s*(?://.*)?$", re.M)
_BRACE_LINE = re.compile(r"(^\s*[{}]\s*$)|(\)\s*\{\s*$)", re.M)
_JAVA_CALLS = re.compile(r"\bSystem\.out\.print|\bnew\s+[A-Z]\w*\s*[(<]|\bString\.join\(|^\s*//", re.M)
# The snippet, whatever its layout: these calls in this order.
_TLS_SNIPPET = "SSLContext.getDefault().getSupportedSSLParameters().getProtocols()"


class JavaHint(NamedTuple):
    """What to say about a script that did not compile: a hint line, and a Python form when one is known."""

    message: str
    python: str | None = None


def looks_like_java(source: str) -> bool:
    """Two or more marks of Java: `import a.b.C;`, a typed declaration, `;` line ends, braces, Java calls."""
    marks = [_IMPORT, _TYPED, _SEMICOLON_END, _BRACE_LINE, _JAVA_CALLS]
    return sum(1 for mark in marks if mark.search(source)) >= 2


def _is_tls_snippet(source: str) -> bool:
    squeezed = re.sub(r"\s+", "", source)
    return _TLS_SNIPPET in squeezed and "String.join(" in squeezed and "jcsOut.println(" in squeezed


def java_hint(source: str, error: str | None) -> JavaHint | None:
    """The hint for a script that failed with `error`, when it failed to compile and reads like Java."""
    if not error or not error.rstrip().rsplit("\n", 1)[-1].startswith("SyntaxError"):
        return None
    if not looks_like_java(source):
        return None
    if _is_tls_snippet(source):
        return JavaHint(
            "this is the product's TLS-protocols snippet in RedwoodScript (Java); jcsh scripts are Python. "
            "Its Python form (also `jcsh examples tls_protocols`; `jcsh tls protocols` says the same):",
            TLS_PROTOCOLS_PYTHON,
        )
    return JavaHint(HINT)
