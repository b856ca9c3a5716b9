"""The team deployment's Hub (deploy/hub/jupyterhub_config.py) as a real, in-process JupyterHub.

pytest-jupyterhub's ``hub_app`` starts a MockHub (with a real configurable-http-proxy) from
the deployment's own config file, loaded with the environment docker-compose.yml gives the
``hub`` container. Only what cannot exist outside the stack is moved: the database (the
MockHub's SQLite), the Hub's and the service's addresses (127.0.0.1). DockerSpawner is
exercised the way its own tests do, up to the Docker call: ``create_container``'s arguments
are caught instead of sent, so no daemon is needed and no container starts.
"""

import json
from pathlib import Path

import pytest
from tornado import web
from traitlets.config.loader import PyFileConfigLoader

from tests.hubtest import free_port

ROOT = Path(__file__).resolve().parent.parent
CHP = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"

ENV = {
    "JPY_COOKIE_SECRET": "ab" * 32,  # as docker-compose.yml gives it (else the Hub writes a file in the cwd)
    "HUB_DB_PASSWORD": "hub-db-secret",
    "DEMO_PASSWORD": "demo-secret",
    "JUPYTERHUB_AUTHENTICATOR": "dummy",
    "JUPYTERHUB_ADMIN_USERS": "admin, ops",
    "JUPYTERHUB_ALLOWED_USERS": "",
    "JUPYTERHUB_CULL_IDLE_TIMEOUT": "0",
    "NOTEBOOK_JOBS_API_TOKEN": "service-token-" + "5" * 40,
    "NOTEBOOK_JOBS_SINGLEUSER_IMAGE": "notebook-jobs-singleuser:9.9.9",
    "STACK_NAME": "notebook-jobs",
    "USER_VOLUME_TEMPLATE": "jupyterhub-user-{username}",
    "SINGLEUSER_MEM_LIMIT": "2G",
    "SINGLEUSER_CPU_LIMIT": "2",
}


def deployment_config(monkeypatch, service_port=None, **env):
    """The deployment's config as the ``hub`` container loads it, moved onto this machine's loopback."""
    for name, value in {**ENV, **env}.items():
        monkeypatch.setenv(name, value)
    config = PyFileConfigLoader("jupyterhub_config.py", path=str(ROOT / "deploy" / "hub")).load_config()
    # the stack's addresses ("hub", "service", 0.0.0.0) are not this machine's: loopback ports instead
    for name in ("bind_url", "hub_bind_url", "hub_connect_url", "db_url", "pid_file"):
        config.JupyterHub.pop(name, None)
    config.ConfigurableHTTPProxy.pop("pid_file", None)
    config.ConfigurableHTTPProxy.command = [str(CHP)]
    services = [dict(s) for s in config.JupyterHub.services]
    for s in services:
        if s["name"] == "notebook-jobs":
            s["url"] = f"http://127.0.0.1:{service_port or free_port()}"
    config.JupyterHub.services = services
    return config


class Answer(web.RequestHandler):
    def get(self, path):
        self.write("{}")


@pytest.fixture
async def deployed(monkeypatch, hub_app):
    """``await deployed(**env)``: the started Hub of the deployment's config.

    The service's URL is a stand-in on a loopback port that answers every GET (the Hub waits
    for an external service at start-up); what the service does is not tested here.
    """
    if not CHP.exists():
        pytest.skip("configurable-http-proxy is not installed (scripts/setup.sh)")
    port = free_port()
    server = web.Application([(r"/(.*)", Answer)]).listen(port, address="127.0.0.1")

    async def start(**env):
        return await hub_app(deployment_config(monkeypatch, service_port=port, **env))

    yield start
    server.stop()


class CaughtDocker:
    """Stands in for DockerSpawner.docker(): records each call and answers the two a create needs."""

    def __init__(self, image_cmd):
        self.calls = []
        self.image_cmd = image_cmd

    async def __call__(self, method, *args, **kwargs):
        self.calls.append((method, args, kwargs))
        if method == "inspect_image":
            return {"Config": {"Cmd": self.image_cmd, "Entrypoint": None}}
        if method == "create_container":
            return {"Id": "caught"}
        raise AssertionError(f"unexpected docker call {method}")


async def created_container(app, name, monkeypatch):
    """The arguments DockerSpawner would create ``name``'s server container with."""
    import docker
    from dockerspawner import DockerSpawner

    from jupyterhub.tests.utils import add_user

    user = app.users[add_user(app.db, app, name=name)]
    spawner = user.spawners[""]
    # a client that never connects: create_host_config only needs the API version
    monkeypatch.setattr(DockerSpawner, "_client", docker.APIClient(base_url="unix:///nonexistent.sock",
                                                                   version="1.41"))
    caught = CaughtDocker(["jupyterhub-singleuser"])
    monkeypatch.setattr(spawner, "docker", caught)
    await spawner.create_object()
    (kwargs,) = [kw for method, _, kw in caught.calls if method == "create_container"]
    return spawner, kwargs


async def test_each_user_gets_the_single_user_image_with_a_home_volume_of_their_own_on_the_stacks_network(
        deployed, monkeypatch):
    from dockerspawner import DockerSpawner

    app = await deployed()
    assert app.spawner_class is DockerSpawner
    for name, volume in (("alice", "jupyterhub-user-alice"), ("bob.smith", "jupyterhub-user-bob-2esmith")):
        spawner, kwargs = await created_container(app, name, monkeypatch)
        host = kwargs["host_config"]
        assert kwargs["image"] == "notebook-jobs-singleuser:9.9.9"
        assert kwargs["command"][0] == "jupyterhub-singleuser"
        assert host["Binds"] == [f"{volume}:/home/jovyan:rw"]  # a named volume, never a host path
        assert host["NetworkMode"] == "notebook-jobs"
        assert host["Memory"] == 2 * 1024 ** 3 and host["CpuQuota"] == 2 * host["CpuPeriod"]
        assert "no-new-privileges" in host["SecurityOpt"]
        assert "PortBindings" not in host  # reached over the stack's network, published nowhere
        assert kwargs["labels"]["org.jupyter.notebook-jobs.role"] == "singleuser"  # what stack.sh down stops
        assert kwargs["labels"]["org.jupyter.notebook-jobs.stack"] == "notebook-jobs"
        assert kwargs["name"] == f"notebook-jobs-user-{volume.rsplit('-user-', 1)[1]}"
        assert not any("docker.sock" in b for b in host["Binds"])
        assert spawner.pull_policy.lower() == "never"
        assert spawner.notebook_dir == "/home/jovyan"


async def test_the_service_reads_the_very_volume_dockerspawner_mounts(deployed, monkeypatch):
    from hub_service.volumes import VolumeWorkspaces

    monkeypatch.setenv("USER_VOLUME_TEMPLATE", "team-home-{username}")
    app = await deployed(USER_VOLUME_TEMPLATE="team-home-{username}")
    service_config = PyFileConfigLoader("notebook_jobs_config.py", path=str(ROOT / "deploy" / "hub"))
    monkeypatch.setenv("SERVICE_DB_PASSWORD", "x")
    volumes = VolumeWorkspaces(config=service_config.load_config())
    volumes.volume_template = service_config.load_config().NotebookJobs.workspace_volume
    for name in ("alice", "bob.smith", "Upper", "ünïcode-user", "a_b"):
        spawner, kwargs = await created_container(app, name, monkeypatch)
        (bind,) = kwargs["host_config"]["Binds"]
        assert bind.split(":")[0] == volumes.volume_for(name)
        assert bind.startswith("team-home-")
    assert volumes.user == "1000:1000"  # the single-user image's jovyan: the helper reads as the owner


async def test_a_users_server_token_has_the_scopes_the_lab_extension_needs_and_reaches_the_service(
        deployed, monkeypatch):
    from jupyterhub import orm, scopes
    from jupyterhub.tests.utils import add_user

    app = await deployed()
    user = app.users[add_user(app.db, app, name="carol")]
    spawner = user.spawners[""]
    assert spawner.environment["NOTEBOOK_JOBS_URL"] == "http://hub:8000/services/notebook-jobs/"  # (the proxy)
    # what the Hub mints for a starting server, from the deployment's server_token_scopes
    token = user.new_api_token(note="server", scopes=list(spawner.server_token_scopes))
    orm_token = orm.APIToken.find(app.db, token)
    granted = scopes.get_scopes_for(orm_token)
    assert "access:services!service=notebook-jobs" in granted  # the extension's calls to the service
    assert "users:activity!user=carol" in granted
    assert not any(s.startswith(("admin", "read:services", "servers")) for s in granted)
    # the Hub answers the service's check of that token with the user, as the service asks it
    service_token = ENV["NOTEBOOK_JOBS_API_TOKEN"]
    from tornado.httpclient import AsyncHTTPClient

    r = await AsyncHTTPClient().fetch(app.hub.api_url + "/user",
                                      headers={"Authorization": f"token {token}"}, raise_error=False)
    assert r.code == 200 and json.loads(r.body)["name"] == "carol"
    r = await AsyncHTTPClient().fetch(app.hub.api_url + "/user",
                                      headers={"Authorization": f"token {service_token}"}, raise_error=False)
    assert r.code == 200 and json.loads(r.body)["kind"] == "service"


async def test_the_service_is_registered_with_its_token_oauth_and_every_user_may_use_it(deployed):
    from jupyterhub import orm
    from jupyterhub.tests.utils import add_user

    app = await deployed()
    service = app._service_map["notebook-jobs"]
    assert not service.managed  # an external service: its own container
    assert service.display and service.oauth_no_confirm
    assert service.oauth_client_id == "service-notebook-jobs"
    assert service.oauth_redirect_uri.endswith("/services/notebook-jobs/oauth_callback")
    assert orm.APIToken.find(app.db, ENV["NOTEBOOK_JOBS_API_TOKEN"]).service.name == "notebook-jobs"
    # the service's own token carries no admin power: it only identifies the callers it is shown
    assert not any(r.name == "admin" for r in service.orm.roles)
    user = app.users[add_user(app.db, app, name="dave")]
    from jupyterhub import scopes

    assert "access:services!service=notebook-jobs" in scopes.get_scopes_for(user.orm_user)
    # the proxy routes /services/notebook-jobs/ to the service
    routes = await app.proxy.get_all_routes()
    assert any("/services/notebook-jobs" in r for r in routes), list(routes)


async def test_login_is_the_dummy_authenticator_with_the_generated_password_and_the_admins_from_env(deployed):
    from jupyterhub.auth import DummyAuthenticator

    app = await deployed()
    assert isinstance(app.authenticator, DummyAuthenticator)
    assert await app.authenticator.authenticate(None, {"username": "erin", "password": "demo-secret"})
    assert not await app.authenticator.authenticate(None, {"username": "erin", "password": "guess"})
    assert app.authenticator.admin_users == {"admin", "ops"}


def test_the_hub_refuses_to_start_the_dummy_authenticator_without_a_password(monkeypatch):
    with pytest.raises(SystemExit, match="DEMO_PASSWORD"):
        deployment_config(monkeypatch, DEMO_PASSWORD="")


async def test_an_admin_switches_to_native_authentication_and_an_allow_list_in_env(deployed):
    NativeAuthenticator = pytest.importorskip("nativeauthenticator").NativeAuthenticator
    app = await deployed(JUPYTERHUB_AUTHENTICATOR="native", DEMO_PASSWORD="", JUPYTERHUB_ALLOWED_USERS="frank")
    assert isinstance(app.authenticator, NativeAuthenticator)
    assert app.authenticator.open_signup is False
    assert app.authenticator.allowed_users == {"frank", "admin", "ops"}  # admins are allowed too
    assert not app.authenticator.allow_all
