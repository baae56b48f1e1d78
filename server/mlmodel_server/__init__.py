"""mlmodel-server: the model server image's Python package (roles: fetch, serve)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlmodel-operator")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
