"""The `serve` role: load the model once in the master process, then fork workers (granian or gunicorn) that share it."""
