"""The `serve` role: load the model once in the gunicorn master, then fork workers that share it."""
