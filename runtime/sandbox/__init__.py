"""The script engine: a worker process that can only act through requests to its parent."""
