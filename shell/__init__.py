"""The faces of jcsh: command line, REPL, rendering."""
