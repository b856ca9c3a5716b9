"""Notebook Jobs: a JupyterHub service that runs users' notebooks as jobs."""

from ._version import __version__  # noqa: F401
