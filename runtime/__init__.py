"""The engine: registry, credentials, mail, TLS, sandbox. Imports neither shell nor stdlib."""

__version__ = "0.2.0"
