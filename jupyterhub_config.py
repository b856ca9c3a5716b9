"""Demo Hub: dummy login (any name), local single-user servers, the notebook-jobs service.

Ports and directories can be moved with environment variables so the test suite can run
its own Hub beside a demo one:

  NOTEBOOK_JOBS_DATA_DIR   where the Hub and the service keep their state (./data)
  HUB_PORT                 public port of the proxy (8000)
  NOTEBOOK_JOBS_PORT       port of the service (10101)
  NOTEBOOK_JOBS_EXECUTOR   docker | swarm | local (default: docker when available)
  NOTEBOOK_JOBS_ARGS       extra service options (replaces the demo's warm pool of two
                           pre-started job containers); never secrets: anyone who may read
                           the service in the Hub's API sees its command, and `ps` shows it
  NOTEBOOK_JOBS_WEBHOOK_SECRET, NOTEBOOK_JOBS_SMTP_PASSWORD
                           secrets, handed to the service in its environment only
"""

import os
import shutil
import sys

c = get_config()  # noqa: F821

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.abspath(os.environ.get("NOTEBOOK_JOBS_DATA_DIR", os.path.join(here, "data")))
hub_port = int(os.environ.get("HUB_PORT", "8000"))
service_port = int(os.environ.get("NOTEBOOK_JOBS_PORT", "10101"))
os.makedirs(data, exist_ok=True)

c.JupyterHub.bind_url = f"http://127.0.0.1:{hub_port}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{int(os.environ.get('HUB_API_PORT', hub_port + 81))}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(os.environ.get('PROXY_API_PORT', hub_port + 1))}"
chp = os.path.join(here, "node_modules", ".bin", "configurable-http-proxy")
c.ConfigurableHTTPProxy.command = [chp if os.path.exists(chp) else shutil.which("configurable-http-proxy") or chp]
c.ConfigurableHTTPProxy.pid_file = os.path.join(data, "jupyterhub-proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{os.path.join(data, 'jupyterhub.sqlite')}"
c.JupyterHub.cookie_secret_file = os.path.join(data, "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(data, "jupyterhub.pid")

# Demo login: any user name; "admin" is a Hub admin. Set DEMO_PASSWORD to require one.
c.JupyterHub.authenticator_class = "dummy"
if os.environ.get("DEMO_PASSWORD"):
    c.DummyAuthenticator.password = os.environ["DEMO_PASSWORD"]
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}

# Single-user servers as local processes with a home per user under data/users.
workspaces = os.path.join(data, "users", "{username}")
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = workspaces
c.Spawner.default_url = "/lab"
# the Hub's own environment, even when it was started without activating it
c.Spawner.cmd = [os.path.join(os.path.dirname(sys.executable), "jupyterhub-singleuser")]
# The demo's JupyterLab does not ask "Would you like to get notified about official Jupyter
# news?" (nor fetch any): a settings override of the demo's own, in its data directory, given
# to its single-user servers only (not shipped with the extension, not the environment's).
lab_settings = os.path.join(data, "lab-settings")
os.makedirs(lab_settings, exist_ok=True)
with open(os.path.join(lab_settings, "overrides.json"), "w") as f:
    f.write('{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}\n')
c.Spawner.args = (["--allow-root"] if os.geteuid() == 0 else []) + [f"--LabApp.app_settings_dir={lab_settings}"]
# The JupyterLab extension (extension/) calls the service from the single-user server with
# the server's own token: grant that token the service, on top of the server role's scopes.
# Not read:services: the extension is told the service's URL (NOTEBOOK_JOBS_URL), and that
# scope would show every user the service's whole command line.
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    "access:services!service=notebook-jobs",
]
c.Spawner.environment = {"NOTEBOOK_JOBS_URL": f"http://127.0.0.1:{service_port}/services/notebook-jobs/"}

service_cmd = [
    sys.executable, "-m", "hub_service.cli", "serve",
    f"--data-dir={os.path.join(data, 'service')}",
    f"--NotebookJobs.workspace_root={workspaces}",
]
lean_runner = os.path.join(here, ".venv-runner", "bin", "python")
if os.path.exists(lean_runner):  # made by scripts/setup.sh: kernels start faster without JupyterLab
    service_cmd.append(f"--LocalExecutor.runner_python={lean_runner}")
if os.environ.get("NOTEBOOK_JOBS_EXECUTOR"):
    service_cmd.append(f"--executor={os.environ['NOTEBOOK_JOBS_EXECUTOR']}")
if not os.environ.get("NOTEBOOK_JOBS_ARGS"):  # the demo: two pre-started job containers
    service_cmd.append("--DockerExecutor.warm_pool=2")
service_cmd += [a for a in os.environ.get("NOTEBOOK_JOBS_ARGS", "").split() if a]

c.JupyterHub.services = [
    {
        "name": "notebook-jobs",
        "url": f"http://127.0.0.1:{service_port}",
        "command": service_cmd,
        "cwd": here,
        "display": True,  # listed in the Hub's Services menu
        "oauth_no_confirm": True,
        "info": {"description": "Run notebooks as jobs"},
        # secrets in the environment, which the Hub's API does not show (its command it does)
        "environment": {k: os.environ[k] for k in ("NOTEBOOK_JOBS_WEBHOOK_SECRET", "NOTEBOOK_JOBS_SMTP_PASSWORD")
                        if os.environ.get(k)},
    }
]

# Every user may use the service (which puts it in their Services menu); admins see all jobs
# (the service reads the admin flag). Users get no read:services: it shows the service's command.
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=notebook-jobs"]},
]
