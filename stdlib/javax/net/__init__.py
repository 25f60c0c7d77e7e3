"""javax.net: only what the shims need."""
