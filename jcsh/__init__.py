"""jcsh: a sandboxed Python scripting shell for outgoing mail (`jcsh.shell`, `jcsh.stdlib`, `jcsh.runtime`).

In the source tree `shell/`, `stdlib/` and `runtime/` sit beside this folder and are linked into
it, so that they import as `jcsh.*` there as they do when installed.
"""
