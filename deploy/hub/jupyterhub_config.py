"""The team deployment's Hub (docker-compose.yml's `hub`): DockerSpawner, PostgreSQL, the notebook-jobs service.

Everything an admin sets lives in .env (scripts/stack.sh writes it on first use from
.env.example); docker-compose.yml hands each variable below to this container.

  JUPYTERHUB_AUTHENTICATOR   dummy (default: any name, one shared DEMO_PASSWORD), native,
                             github, generic-oauth, … (an entry point name or a class)
  DEMO_PASSWORD              the dummy authenticator's password (required with it)
  JUPYTERHUB_ADMIN_USERS     comma-separated Hub admins (also the service's admins)
  JUPYTERHUB_ALLOWED_USERS   comma-separated users who may log in; empty: anyone the
                             authenticator accepts
  HUB_DB_PASSWORD            the Hub's PostgreSQL role's password
  JPY_COOKIE_SECRET          signs the Hub's cookies (read by JupyterHub itself)
  NOTEBOOK_JOBS_API_TOKEN    the service's Hub API token
  STACK_NAME                 the compose project: the network users' servers join (the
                             Hub's only: PostgreSQL and the service are on others), their
                             containers' name prefix and label
  USER_VOLUME_TEMPLATE       each user's home volume (jupyterhub-user-{username})
  NOTEBOOK_JOBS_SINGLEUSER_IMAGE, SINGLEUSER_MEM_LIMIT, SINGLEUSER_CPU_LIMIT
  JUPYTERHUB_CULL_IDLE_TIMEOUT  seconds after which an idle server is stopped (0: never)
"""

import os
import sys
from urllib.parse import quote

c = get_config()  # noqa: F821
env = os.environ


def listed(name):
    return {v.strip() for v in env.get(name, "").split(",") if v.strip()}


# --- the Hub, the proxy and the database -----------------------------------------------
# The proxy runs in this container (the Hub starts it); only its public port is published,
# by docker-compose.yml, on 127.0.0.1 unless HUB_BIND says otherwise.
c.JupyterHub.bind_url = "http://0.0.0.0:8000"
# the Hub's API, for users' servers (the stack's network) and the service (its backend network)
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_url = "http://hub:8081"
c.JupyterHub.db_url = (f"postgresql+psycopg://jupyterhub:{quote(env['HUB_DB_PASSWORD'], safe='')}"
                       "@postgres:5432/jupyterhub")
# The Hub's schema is upgraded by `jupyterhub upgrade-db` (scripts/stack.sh upgrade-db runs it,
# after a backup) rather than at every start: an upgrade of the image that needs a migration
# then stops with a message instead of changing the database unasked.
c.JupyterHub.upgrade_db = False
c.JupyterHub.pid_file = "/tmp/jupyterhub.pid"
c.ConfigurableHTTPProxy.pid_file = "/tmp/jupyterhub-proxy.pid"
# Users' servers outlive a restart of the Hub (an upgrade does not log everyone out of their
# kernels); scripts/stack.sh down stops them.
c.JupyterHub.cleanup_servers = False

# --- who may log in -----------------------------------------------------------------------
authenticator = env.get("JUPYTERHUB_AUTHENTICATOR", "dummy") or "dummy"
c.JupyterHub.authenticator_class = authenticator
if authenticator == "dummy":
    if not env.get("DEMO_PASSWORD"):
        sys.exit("DEMO_PASSWORD is empty: the dummy authenticator would let anyone in (.env)")
    c.DummyAuthenticator.password = env["DEMO_PASSWORD"]
if authenticator == "native":
    # sign-up asks an admin's approval (the Hub's /hub/authorize page)
    c.NativeAuthenticator.open_signup = False
    import nativeauthenticator

    c.JupyterHub.template_paths = [os.path.join(os.path.dirname(nativeauthenticator.__file__), "templates")]
admins = listed("JUPYTERHUB_ADMIN_USERS")
c.Authenticator.admin_users = admins
allowed = listed("JUPYTERHUB_ALLOWED_USERS")
c.Authenticator.allowed_users = allowed
# explicit both ways: some authenticators (NativeAuthenticator) default to allowing all
c.Authenticator.allow_all = not allowed

# --- single-user servers: one container per user, their home a named volume of their own -
c.JupyterHub.spawner_class = "docker"
c.DockerSpawner.image = env["NOTEBOOK_JOBS_SINGLEUSER_IMAGE"]
c.DockerSpawner.pull_policy = "never"  # images are built here (deploy/build.sh), not pulled
stack = env.get("STACK_NAME", "notebook-jobs")
c.DockerSpawner.network_name = stack
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.notebook_dir = "/home/jovyan"
# {username} is DockerSpawner's escaped name; the service reads the same volume
# (NotebookJobs.workspace_volume in notebook_jobs_config.py, from the same variable)
c.DockerSpawner.volumes = {env.get("USER_VOLUME_TEMPLATE") or "jupyterhub-user-{username}": "/home/jovyan"}
c.DockerSpawner.remove = True  # a stopped server's container goes; its volume stays
c.DockerSpawner.prefix = stack
c.DockerSpawner.name_template = "{prefix}-user-{username}"
# what scripts/stack.sh down finds users' servers by
c.DockerSpawner.extra_create_kwargs = {"labels": {"org.jupyter.notebook-jobs.role": "singleuser",
                                                  "org.jupyter.notebook-jobs.stack": stack}}
c.DockerSpawner.mem_limit = env.get("SINGLEUSER_MEM_LIMIT") or None
if env.get("SINGLEUSER_CPU_LIMIT"):
    c.DockerSpawner.cpu_limit = float(env["SINGLEUSER_CPU_LIMIT"])
c.DockerSpawner.extra_host_config = {"security_opt": ["no-new-privileges"], "pids_limit": 1024}
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
# The Lab extension calls the service from the single-user server, with the server's own
# token: grant that token the service, on top of the server's scopes. It goes through the
# Hub's proxy, as a browser does: users' servers share no network with the service itself.
c.DockerSpawner.environment = {"NOTEBOOK_JOBS_URL": "http://hub:8000/services/notebook-jobs/"}
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    "access:services!service=notebook-jobs",
]

# --- the notebook-jobs service: an external service in its own container (`service`) ---------
c.JupyterHub.services = [
    {
        "name": "notebook-jobs",
        "url": "http://service:10101",
        "api_token": env["NOTEBOOK_JOBS_API_TOKEN"],
        "display": True,  # in the Hub's Services menu
        "oauth_no_confirm": True,
        "info": {"description": "Run notebooks as jobs"},
    },
]
# Every user may use the service; no read:services (it shows services' details to users).
roles = [{"name": "user", "scopes": ["self", "access:services!service=notebook-jobs"]}]

cull = int(env.get("JUPYTERHUB_CULL_IDLE_TIMEOUT") or 0)
if cull > 0:
    c.JupyterHub.services.append({
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={cull}"],
    })
    roles.append({"name": "idle-culler", "services": ["idle-culler"],
                  "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]})
c.JupyterHub.load_roles = roles
