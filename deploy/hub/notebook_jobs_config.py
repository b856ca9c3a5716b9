"""The team deployment's notebook-jobs service (docker-compose.yml's `service`), configured from its environment.

Secrets (SERVICE_DB_PASSWORD, NOTEBOOK_JOBS_WEBHOOK_SECRET, NOTEBOOK_JOBS_SMTP_PASSWORD)
come from .env through the environment, never the command line. Other options can be
added here, or given to `notebook-jobs serve` in docker-compose.yml's command.
"""

import os
from urllib.parse import quote

from hub_service import __version__

c = get_config()  # noqa: F821
env = os.environ

c.NotebookJobs.data_dir = "/srv/notebook-jobs"  # the notebook-jobs-data volume: inputs, outputs, models
c.NotebookJobs.db_url = (f"postgresql+psycopg://notebook_jobs:{quote(env['SERVICE_DB_PASSWORD'], safe='')}"
                         "@postgres:5432/notebook_jobs")
c.NotebookJobs.admin_groups = [g.strip() for g in env.get("NOTEBOOK_JOBS_ADMIN_GROUPS", "").split(",") if g.strip()]

# Users' files are in their DockerSpawner volumes, not on this container's disk: GET
# /notebooks, {"path": …} submits and path schedules read them through a short-lived
# read-only helper container (hub_service/volumes.py), whether or not the user's server is up.
c.NotebookJobs.workspace_volume = env.get("USER_VOLUME_TEMPLATE") or "jupyterhub-user-{username}"
c.VolumeWorkspaces.image = f"notebook-jobs-runner:{__version__}"
c.VolumeWorkspaces.user = "1000:1000"  # jovyan of the single-user image: reads what the user may

# Jobs run in containers of the runner image on the same Docker daemon (the socket mounted
# into this container), with no network.
c.NotebookJobs.executor_class = "docker"
c.DockerExecutor.image = f"notebook-jobs-runner:{__version__}"
c.DockerExecutor.runtime = env.get("NOTEBOOK_JOBS_RUNTIME", "")
c.DockerExecutor.warm_pool = int(env.get("NOTEBOOK_JOBS_WARM_POOL") or 0)
# job and warm containers carry the stack's name (label org.jupyter.notebook-jobs.instance)
c.DockerExecutor.instance = env.get("STACK_NAME", "")
# the host's cgroup tree, mounted read-only: each job's exact peak memory and cpu time
c.DockerExecutor.cgroup_root = "/host/sys/fs/cgroup"
# Docker's volume directory is not mounted here (it holds every user's home): each job's work
# volume is measured for work_quota by a read-only meter container beside it ("auto" would pick
# it too, as long as no such directory is readable here; this holds either way).
c.DockerExecutor.work_quota_meter = "container"
