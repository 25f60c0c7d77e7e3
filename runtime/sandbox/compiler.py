"""Compiling scripts: RestrictedPython's policy (with the name-only attribute checks done at compile
time), readable syntax errors, and the interactive mode that shows a final expression's value.

An attribute read whose name is a literal the guard would judge on the name alone (not
`_`-prefixed, not a frame/code attribute, not one of RUNTIME_CHECKED) is checked here and left
as a plain attribute read, so loops run at Python speed; `getattr(x, name)` with a computed name
always goes through the guard at run time. `a.b += v` and `a[k] += v`, which RestrictedPython
refuses outright, become a guarded read, the in-place operation and a guarded write.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from RestrictedPython import compile_restricted_exec
from RestrictedPython.transformer import INSPECT_ATTRIBUTES, IOPERATOR_TO_STR, RestrictingNodeTransformer

__all__ = ["JcshTransformer", "CompileRefused", "compile_user", "RUNTIME_CHECKED", "DISPLAY_HOOK"]

DISPLAY_HOOK = "_jcsh_display_"
# Names whose safety depends on the object, not only the name: always checked at run time.
RUNTIME_CHECKED = frozenset({"format", "format_map", "get_field", "get_value", "vformat", "obj"})


class CompileRefused(Exception):
    """The code does not compile, or uses what the policy refuses; the message is ready to show."""


class JcshTransformer(RestrictingNodeTransformer):
    """RestrictedPython's policy, with the name-only attribute checks done at compile time."""

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        name = node.attr
        if (
            isinstance(node.ctx, ast.Load)
            and not name.startswith("_")
            and name not in INSPECT_ATTRIBUTES
            and name not in RUNTIME_CHECKED
            and not name.endswith("__roles__")
        ):
            return self.node_contents_visit(node)
        return super().visit_Attribute(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        # `n += 1` on a plain name touches no attribute or item: keep the fast native form.
        if isinstance(node.target, ast.Name):
            return self.node_contents_visit(node)  # visiting the target checks its name
        target = node.target
        if isinstance(target, ast.Attribute) and _plain_name(target.attr):
            attr = target.attr
            return self._augmented(
                node,
                target.value,
                ast.Constant(attr),
                "_getattr_",
                lambda obj, key: ast.Attribute(obj, attr, ast.Store()),
            )
        if isinstance(target, ast.Subscript) and not isinstance(target.slice, ast.Slice):
            return self._augmented(
                node, target.value, target.slice, "_getitem_", lambda obj, key: ast.Subscript(obj, key, ast.Store())
            )
        return super().visit_AugAssign(node)  # RestrictedPython's refusal

    def _augmented(
        self,
        node: ast.AugAssign,
        obj: ast.expr,
        key: ast.expr,
        read: str,
        target: Callable[[ast.expr, ast.expr], ast.expr],
    ) -> list[ast.stmt]:
        """`a.b += v` / `a[k] += v`: guarded read, in-place operation, guarded write; a and k evaluated once."""
        obj, key, value = self.visit(obj), self.visit(key), self.visit(node.value)
        held, at = self.gen_tmp_name(), self.gen_tmp_name()

        def name(n: str) -> ast.Name:
            return ast.Name(n, ast.Load())

        new_value = ast.Call(
            ast.Name("_inplacevar_", ast.Load()),
            [
                ast.Constant(IOPERATOR_TO_STR[type(node.op)]),
                ast.Call(ast.Name(read, ast.Load()), [name(held), name(at)], []),
                value,
            ],
            [],
        )
        statements: list[ast.stmt] = [
            ast.Assign([ast.Name(held, ast.Store())], obj),
            ast.Assign([ast.Name(at, ast.Store())], key),
            ast.Assign([target(ast.Call(ast.Name("_write_", ast.Load()), [name(held)], []), name(at))], new_value),
            ast.Delete([ast.Name(held, ast.Del()), ast.Name(at, ast.Del())]),
        ]
        for statement in statements:
            ast.copy_location(statement, node)
            ast.fix_missing_locations(statement)
        return statements


def _plain_name(name: str) -> bool:
    return not name.startswith("_") and name not in INSPECT_ATTRIBUTES and not name.endswith("__roles__")


def _syntax_message(e: SyntaxError) -> str:
    line = (e.text or "").rstrip("\n")
    where = f'File "{e.filename}", line {e.lineno}'
    if not line.strip():
        return f"{where}\nSyntaxError: {e.msg}"
    stripped = line.lstrip()
    caret = " " * max(0, (e.offset or 1) - 1 - (len(line) - len(stripped)))
    return f"{where}\n    {stripped}\n    {caret}^\nSyntaxError: {e.msg}"


def compile_user(source: str, filename: str, *, interactive: bool, restricted: bool = True) -> Any:
    """A code object for the script; CompileRefused with the message to show when it cannot be one."""
    try:
        tree = ast.parse(source, filename, "exec")
    except SyntaxError as e:
        raise CompileRefused(_syntax_message(e)) from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise CompileRefused(f'File "{filename}": {type(e).__name__}: {e}') from None
    if not restricted:
        return compile(_display_last(tree) if interactive else tree, filename, "exec", dont_inherit=True)
    try:
        if not interactive:
            result = compile_restricted_exec(tree, filename, policy=JcshTransformer)
            if result.errors:
                raise CompileRefused(_refusal_lines(filename, result.errors))
            return result.code
        errors: list[str] = []
        tree = JcshTransformer(errors, [], {}).visit(tree)
        if errors:
            raise CompileRefused(_refusal_lines(filename, errors))
        return compile(_display_last(tree), filename, "exec", dont_inherit=True)
    except RecursionError:
        raise CompileRefused(f'File "{filename}": the code is nested too deeply') from None


def _refusal_lines(filename: str, errors: Any) -> str:
    # RestrictedPython says "Line 3: ...": say which file too, one line per refusal.
    return "\n".join(f'File "{filename}", {e[0].lower()}{e[1:]}' if e.startswith("Line ") else e for e in errors)


def _display_last(tree: ast.Module) -> ast.Module:
    """Interactive mode: hand the value of a final expression statement to the display hook."""
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1]
        call = ast.Call(func=ast.Name(DISPLAY_HOOK, ast.Load()), args=[last.value], keywords=[])
        tree.body[-1] = ast.copy_location(ast.Expr(ast.copy_location(call, last.value)), last)
        ast.fix_missing_locations(tree)
    return tree
