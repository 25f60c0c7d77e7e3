"""The jcsh benchmark harness: `bench/run.py` (see bench/NOTES.md for the method)."""
