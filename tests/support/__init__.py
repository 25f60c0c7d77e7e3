"""Helpers shared by the tests: a test PKI (certificates for loopback servers)."""
