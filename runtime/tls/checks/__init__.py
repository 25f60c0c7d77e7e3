"""Probe checks in the manner of sslyze's scan commands: each a small module with a typed result and its renderer."""
