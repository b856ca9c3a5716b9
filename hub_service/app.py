"""The service application: configuration, start-up, background loops.

Run by the Hub as a managed service (``notebook-jobs serve``), which hands it the
``JUPYTERHUB_*`` environment: where to listen, its URL prefix, and the credentials
HubOAuth needs. Everything else is a trait, settable in a config file
(``notebook_jobs_config.py``) or on the command line, as in JupyterHub itself.
"""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
import signal
import sys
from pathlib import Path
from urllib.parse import urlparse

from jupyterhub.traitlets import EntryPointType
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpserver import HTTPServer
from traitlets import Bool, Dict, Float, Integer, List, TraitError, Unicode, default, validate
from traitlets.config import Application

from . import __version__
from .broker import Broker
from .dispatch import Dispatcher
from .environments import Environments
from .executors.base import Executor
from .executors.local import LocalExecutor
from .gpus import Gpus
from .handlers import routes
from .handlers.pages import make_environment
from .identity import RefreshingHubOAuth
from .intake import Limits
from .jobs import JobManager
from .mailer import Mailer
from .offload import Offload
from .outputs import Artifacts
from .planning import DemandPlanner
from .schedules import Scheduler
from .sizing import Sizing
from .store import Store
from .store.lease import Lease, LeaseHeld
from .sweeps import Sweeps
from .views import JobViews
from .volumes import VolumeWorkspaces
from .webhooks import Webhooks
from .workspace import Workspaces


#: options that hold secrets: only from the environment or a config file, never argv
SECRET_OPTIONS = (
    ("JobManager", "webhook_secret", "NOTEBOOK_JOBS_WEBHOOK_SECRET"),
    ("Mailer", "password", "NOTEBOOK_JOBS_SMTP_PASSWORD"),
)


def docker_available() -> bool:
    """Whether a Docker daemon answers and holds the runner image."""
    try:
        import docker

        from .executors.docker import DockerExecutor

        client = docker.from_env(timeout=3)
        client.images.get(DockerExecutor.image.default_value)
        return True
    except Exception:
        return False


class NotebookJobs(Application):
    """The notebook-jobs JupyterHub service."""

    name = "notebook-jobs"
    version = __version__
    description = "Run users' notebooks as parameterized, sandboxed jobs, as a JupyterHub service."

    aliases = {
        "config": "NotebookJobs.config_file",
        "data-dir": "NotebookJobs.data_dir",
        "db-url": "NotebookJobs.db_url",
        "executor": "NotebookJobs.executor_class",
        "port": "NotebookJobs.port",
        "log-level": "Application.log_level",
    }
    flags = {
        "debug": ({"Application": {"log_level": 10}}, "Log at debug level."),
    }

    classes = [Dispatcher, Sizing, JobManager, DemandPlanner, Webhooks, Mailer, LocalExecutor, Scheduler, Sweeps,
               VolumeWorkspaces, Environments, Gpus]

    config_file = Unicode("notebook_jobs_config.py", help="Config file to load, if it exists.").tag(config=True)

    data_dir = Unicode(help="Where the database, inputs, outputs and models live.").tag(config=True)

    @default("data_dir")
    def _default_data_dir(self):
        return os.environ.get("NOTEBOOK_JOBS_DATA_DIR", os.path.abspath("notebook-jobs-data"))

    db_url = Unicode(
        help="""SQLAlchemy URL of the job store: SQLite (the default, a file in data_dir) or
        PostgreSQL (``postgresql+psycopg://user@host/db``, with the ``postgresql`` extra).
        Migrations run at start.""",
    ).tag(config=True)

    @default("db_url")
    def _default_db_url(self):
        return f"sqlite:///{os.path.join(self.data_dir, 'jobs.sqlite')}"

    lease_wait = Float(
        30.0,
        help="""Seconds to wait at start for the database's lease, held by another service on the
        same database (one service per database: two would each recover the other's jobs), before
        giving up with a message naming it. Covers a restart that overlaps the old process's exit.""",
    ).tag(config=True)

    lease_check_interval = Float(
        10.0,
        help="""Seconds between checks that this service still holds the database's lease. A
        PostgreSQL lease is a session the server can end (a restart, an admin's
        pg_terminate_backend); without it another service could start and recover this one's
        jobs, so the service stops (exit status 1) for its restart policy to start it again.
        0: no checks; a negative number is refused.""",
    ).tag(config=True)

    executor_class = EntryPointType(
        klass=Executor,
        entry_point_group="notebook_jobs.executors",
        help="""Where jobs run: 'docker' (a hardened container per job), 'swarm' (the same sandbox,
        a one-task service per job on a Docker Swarm) or 'local' (a subprocess, for development).
        Default: docker when a daemon with the runner image answers, else local.""",
    ).tag(config=True)

    @default("executor_class")
    def _default_executor_class(self):
        if docker_available():
            from .executors.docker import DockerExecutor

            return DockerExecutor
        return LocalExecutor

    service_prefix = Unicode(help="URL prefix of the service (from JUPYTERHUB_SERVICE_PREFIX).").tag(config=True)

    @default("service_prefix")
    def _default_service_prefix(self):
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/notebook-jobs/")

    service_url = Unicode(help="Where the service listens (from JUPYTERHUB_SERVICE_URL).").tag(config=True)

    @default("service_url")
    def _default_service_url(self):
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")

    port = Integer(0, help="Port to listen on (default: the one in service_url).").tag(config=True)

    hub_prefix = Unicode(help="URL prefix of the Hub (for its static files and login).").tag(config=True)

    @default("hub_prefix")
    def _default_hub_prefix(self):
        return os.environ.get("JUPYTERHUB_BASE_URL", "/").rstrip("/") + "/hub/"

    max_upload_size = Integer(32 << 20, help="Largest submission accepted, in bytes (413 past it).").tag(config=True)
    max_parameters_size = Integer(
        64 << 10,
        help="""Largest a job's parameters may be, as JSON, in bytes (413 past it). Parameters are
        shown in every list of jobs and injected into the notebook's source: data belongs in a
        file of a .zip bundle.""",
    ).tag(config=True)
    bundle_max_files = Integer(1000, help="Most files a .zip bundle may hold.").tag(config=True)
    bundle_max_bytes = Integer(256 << 20, help="Most bytes a .zip bundle may unpack to.").tag(config=True)

    workspace_root = Unicode(
        "/home/{username}",
        help="""A user's workspace, for GET /notebooks and {"path": …} submissions.
        {username} is replaced; match the spawner's notebook directory.""",
    ).tag(config=True)

    workspace_volume = Unicode(
        "",
        help="""A Docker volume per user that holds the user's workspace, as DockerSpawner's
        volumes do (e.g. jupyterhub-user-{username}; {username} escaped as DockerSpawner
        escapes it). When set, GET /notebooks, {"path": …} submissions and path schedules read
        that volume through a short-lived read-only helper container (VolumeWorkspaces; its
        image, uid and timeout are its own options) instead of workspace_root on the
        service's own disk: for a service in a container of its own.""",
    ).tag(config=True)

    admin_groups = List(Unicode(), help="Hub groups whose members act as admins of this service.").tag(config=True)

    cookie_secret_file = Unicode(help="File holding the secret that signs the service's cookies.").tag(config=True)

    @default("cookie_secret_file")
    def _default_cookie_secret_file(self):
        return os.path.join(self.data_dir, "cookie_secret")

    tornado_settings = Dict(help="Extra Tornado application settings.").tag(config=True)

    recover_on_start = Bool(True, help="Reconcile the store with the backend at start-up.").tag(config=True)

    auth_cache_max_age = Integer(
        5,
        help="""Seconds the service trusts the Hub's answer about a token or login cookie before
        asking the Hub again (HubAuth.cache_max_age, whose own default is 300). A token revoked
        or expired in the Hub stops working here -- for reads and for submits alike -- within
        this time: no request is served on an identity older than it. At least 1.""",
    ).tag(config=True)

    @validate("auth_cache_max_age")
    def _valid_auth_cache_max_age(self, proposal):
        # HubAuth's cache keeps answers forever at 0, the opposite of what 0 would suggest
        if proposal["value"] < 1:
            raise TraitError("auth_cache_max_age must be at least 1 second")
        return proposal["value"]

    @validate("lease_check_interval")
    def _valid_lease_check_interval(self, proposal):
        # a negative interval would turn the checks off as silently as 0 does
        if proposal["value"] < 0:
            raise TraitError("lease_check_interval must be 0 (no checks) or a positive number of seconds")
        return proposal["value"]

    @property
    def limits(self) -> Limits:
        """How much a submission may be, as configured."""
        return Limits(max_upload_size=self.max_upload_size, max_parameters_size=self.max_parameters_size,
                      bundle_max_files=self.bundle_max_files, bundle_max_bytes=self.bundle_max_bytes)

    def cookie_secret(self) -> bytes:
        """A persistent secret, so logins survive a restart of the service."""
        path = Path(self.cookie_secret_file)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()

    _load_task = _retrain_task = None  # the demand planner's loops, started with the service
    _lease_task = None
    exit_status = 0  # set when the service stops itself

    def initialize(self, argv=None):
        super().initialize(argv)
        on_command_line = [f"{cls}.{name}" for cls, name, _ in SECRET_OPTIONS if name in self.cli_config.get(cls, {})]
        if on_command_line:
            # the Hub hands a managed service's command to anyone who may read the service
            self.log.critical("%s may not be given on the command line, where the Hub and `ps` show it to "
                              "others: set it in the environment (%s) or in %s", ", ".join(on_command_line),
                              ", ".join(env for _, _, env in SECRET_OPTIONS), self.config_file)
            self.exit(2)
        if os.path.exists(self.config_file):
            self.load_config_file(self.config_file)
        Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        self.lease = Lease(self.db_url)
        try:
            self.lease.acquire()
        except LeaseHeld as held:
            self.log.warning("waiting up to %gs for the database: %s", self.lease_wait, held)
            try:
                self.lease.acquire(wait=self.lease_wait)
            except LeaseHeld as e:
                self.log.critical("not starting: %s", e)
                self.exit(1)
        self.store = Store(self.db_url)
        self.artifacts = Artifacts(self.data_dir)
        self.executor = self.executor_class(parent=self, log=self.log)
        if "instance" in self.executor.trait_names() and not self.executor.instance:
            # unique per deployment (per database), so neighbours on one daemon stay apart
            self.executor.instance = self.store.instance_id()
        self.dispatcher = Dispatcher(parent=self, log=self.log)
        self.sizing = Sizing(parent=self, log=self.log)
        self.offload = self.sizing.offload = Offload(idle_lanes=["train"] if self.sizing.retrain_idle else [])
        if not os.path.isabs(self.sizing.model_dir):
            self.sizing.model_dir = os.path.join(self.data_dir, self.sizing.model_dir)
        self.planner = DemandPlanner(
            parent=self, log=self.log, store=self.store, sizing=self.sizing, dispatcher=self.dispatcher,
        )
        prefix = self.service_prefix if self.service_prefix.endswith("/") else self.service_prefix + "/"
        self.mailer = Mailer(parent=self, log=self.log, service_prefix=prefix)
        self.mailer.warn_if_unlinked()
        broker = Broker()
        environments = Environments(parent=self, log=self.log, runner_image=getattr(self.executor, "image", ""))
        environments.default_environment  # (a default the admin does not list stops the start, saying so)
        self.jobs = JobManager(
            parent=self, log=self.log, store=self.store, artifacts=self.artifacts, executor=self.executor,
            environments=environments,
            dispatcher=self.dispatcher, sizing=self.sizing, planner=self.planner,
            broker=broker, webhooks=Webhooks(parent=self, log=self.log), mailer=self.mailer,
        )
        self.views = JobViews(store=self.store, artifacts=self.artifacts, broker=broker, executor=self.executor,
                              dispatcher=self.dispatcher, sizing=self.sizing, offload=self.offload)
        if self.workspace_volume:
            self.workspaces = VolumeWorkspaces(parent=self, log=self.log, limits=self.limits,
                                               volume_template=self.workspace_volume)
        else:
            self.workspaces = Workspaces(self.workspace_root, self.limits)
        self.sweeps = Sweeps(parent=self, log=self.log, store=self.store, flow=self.jobs)
        self.scheduler = Scheduler(parent=self, log=self.log, store=self.store, artifacts=self.artifacts,
                                   jobs=self.jobs, sweeps=self.sweeps, read_path=self.workspaces.read)
        self.hub_auth = self._hub_auth()
        settings = dict(
            jobs=self.views,
            flow=self.jobs,
            workspaces=self.workspaces,
            planner=self.planner,
            mailer=self.mailer,
            scheduler=self.scheduler,
            sweeps=self.sweeps,
            service_config=self,
            service_prefix=prefix,
            hub_prefix=self.hub_prefix,
            hub_base_url=self.hub_prefix[: -len("hub/")] or "/",
            jinja_env=make_environment(),
            cookie_secret=self.cookie_secret(),
            login_url=url_path_join(self.hub_prefix, "login"),
            xsrf_cookies=False,  # HubOAuth checks XSRF itself, token requests are exempt
            log_function=self._log_request,
        )
        settings.update(self.tornado_settings)
        self.web_app = web.Application(routes(prefix), **settings)

    def _hub_auth(self) -> RefreshingHubOAuth:
        """The HubOAuth every handler shares (HubOAuth.instance() is this one), with this service's cache age."""
        hub_auth = RefreshingHubOAuth.instance()
        if hub_auth.cache_max_age != self.auth_cache_max_age:
            hub_auth.cache_max_age = self.auth_cache_max_age
            hub_auth.cache = type(hub_auth.cache)(self.auth_cache_max_age)  # answers cached so far expire too
        return hub_auth

    def _log_request(self, handler):
        status = handler.get_status()
        level = self.log.info if status < 400 else self.log.warning
        if handler.request.path.endswith("/health") and status < 400:
            level = self.log.debug
        level("%d %s %.1fms", status, handler._request_summary(), 1000.0 * handler.request.request_time())

    async def start_async(self) -> None:
        await self.executor.start()
        if self.recover_on_start:
            await self.jobs.recover()
        self.jobs.start()
        await self.scheduler.start()
        if self.sizing.use_model:
            self._load_task = asyncio.ensure_future(self.planner.load_loop())
            if self.sizing.retrain_interval > 0:
                self._retrain_task = asyncio.ensure_future(self.planner.retrain_loop(self.sizing.retrain_interval))
        url = urlparse(self.service_url)
        port = self.port or url.port or 10101
        self.http_server = HTTPServer(self.web_app, xheaders=True, max_body_size=self.max_upload_size + (1 << 20))
        self.http_server.listen(port, url.hostname or "127.0.0.1")
        self.log.info("notebook-jobs %s listening on %s:%s%s (executor: %s)", __version__, url.hostname, port,
                      self.service_prefix, self.executor.name)
        # What is made by now (the modules, the app, its store and handlers: some 260,000 objects) lives as long as
        # the service. Out of the collector's sight, a full collection walks only what came since: 5-8 ms of the
        # event loop's time instead of 110-130 ms in a drain of jobs (bench_load --drain), each such pause
        # holding every request and event the service had.
        gc.freeze()

    async def _watch_lease(self, stop) -> None:
        """Call ``stop`` once the database's lease is gone (checked in a thread: a query)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.lease_check_interval)
            try:
                held = await asyncio.wait_for(loop.run_in_executor(None, self.lease.held),
                                              timeout=max(30.0, 3 * self.lease_check_interval))
            except asyncio.TimeoutError:
                held = False  # the database did not answer: as good as gone for a lease
            if not held:
                self.log.critical("stopping: this service lost the database's lease (its session with the "
                                  "database ended), and another service may now take the database and "
                                  "recover its jobs")
                self.exit_status = 1
                stop()
                return

    async def stop_async(self) -> None:
        self.http_server.stop()
        for task in (self._load_task, self._retrain_task, self._lease_task):
            if task is not None:
                task.cancel()
        await self.scheduler.stop()
        await self.jobs.stop()
        await self.executor.stop()
        self.offload.shutdown()
        self.store.close()

    def start(self):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        stopping = asyncio.Event()

        def shutdown(*_):
            self.log.info("shutting down")
            loop.call_soon_threadsafe(stopping.set)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, shutdown)

        async def main():
            await self.start_async()
            if self.lease_check_interval > 0:
                self._lease_task = asyncio.ensure_future(self._watch_lease(stopping.set))
            await stopping.wait()
            await self.stop_async()

        loop.run_until_complete(main())
        if self.exit_status:
            self.exit(self.exit_status)


main = NotebookJobs.launch_instance

if __name__ == "__main__":
    sys.exit(main())
