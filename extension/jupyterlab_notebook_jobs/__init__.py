"""JupyterLab extension for Notebook Jobs: the "Submit as job" button, the results panel,
and the jupyter_server extension that talks to the service for them.

Only the server extension calls the service, with the single-user server's own Hub token
(``JUPYTERHUB_API_TOKEN``); the browser talks to the server extension only.
"""

try:
    from ._version import __version__
except ImportError:  # a source tree that was never built
    __version__ = "dev"


def _jupyter_labextension_paths():
    """Where JupyterLab finds the prebuilt frontend."""
    return [{"src": "labextension", "dest": "jupyterlab-notebook-jobs"}]


def _jupyter_server_extension_points():
    """The jupyter_server extension this package provides."""
    return [{"module": "jupyterlab_notebook_jobs"}]


def _load_jupyter_server_extension(server_app):
    """Register the routes under ``{base_url}notebook-jobs/``."""
    from .client import ServiceClient
    from .handlers import setup_handlers

    client = ServiceClient(parent=server_app, log=server_app.log)
    setup_handlers(server_app.web_app, client)
    server_app.log.info("notebook-jobs extension: forwarding to %s", client.service_url or "(service not found yet)")
