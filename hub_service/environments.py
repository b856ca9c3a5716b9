"""Environments: the images an admin offers jobs to run in, and which one a job gets.

An admin lists them in config (``c.Environments.environments``): a name, a description,
the image, optionally default resources (a submission's ``resources``, for a job that asks
for none of them) and whether GPU jobs may use it. Without a list, the executor's runner
image is the one environment, ``python``. A job and a schedule name theirs
(``environment``); the default is ``Environments.default``.

``GET /environments`` lists them with the packages each holds, read from the image by the
executor once per image id (:meth:`Executor.packages`). A job may also bring packages of
its own (:mod:`hub_service.requirements`): the executor installs them on top of its
environment's image (:mod:`hub_service.executors.docker.builds`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from traitlets import Dict, List, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from .intake import IntakeError, parse_resources

#: the name of the one environment when the admin lists none: the executor's runner image
DEFAULT_NAME = "python"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_KEYS = {"name", "description", "image", "resources", "gpu"}


@dataclass(frozen=True)
class Environment:
    """One environment jobs may run in."""

    name: str
    image: str  # empty: the executor's own (the local executor runs no images)
    description: str = ""
    resources: dict = field(default_factory=dict)  # default requests, as parse_resources gives them
    gpu: bool = False  # whether GPU jobs may run in it

    def with_defaults(self, requested: dict) -> dict:
        """What a job of this environment asks for: its default resources, under what the user asked."""
        return dict(self.resources, **requested)

    def model(self, packages: list) -> dict:
        """What ``GET /environments`` says of it."""
        return {"name": self.name, "description": self.description, "image": self.image, "gpu": self.gpu,
                "resources": self.resources, "packages": packages}


def _environment(entry) -> Environment:
    """One entry of the admin's list, checked (a TraitError says what is wrong with it)."""
    if not isinstance(entry, dict) or set(entry) - _KEYS or "name" not in entry:
        raise TraitError(f"Environments.environments: each entry is a dict of {sorted(_KEYS)} with a name; "
                         f"got {entry!r}")
    name = entry["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise TraitError(f"Environments.environments: name {name!r}: lower-case letters, digits, '_', '.', '-'")
    try:
        resources = parse_resources(entry.get("resources") or {})
    except IntakeError as e:
        raise TraitError(f"Environments.environments: {name}: {e.message}") from None
    return Environment(name=name, image=str(entry.get("image") or ""), description=str(entry.get("description", "")),
                       resources=resources, gpu=bool(entry.get("gpu", False)))


class Environments(LoggingConfigurable):
    """The admin's environments, and the choice of a job's."""

    environments = List(
        Dict(),
        help="""The environments jobs may run in: a list of {"name", "description", "image",
        "resources" (default requests, as a submission's resources: {"memory": "4GB"}), "gpu"
        (whether GPU jobs may use it)}. Images must exist on the daemon (built by
        runner-image/build.sh; the service never pulls). Empty: the executor's runner image
        alone, as the environment "python", where GPU jobs may run.""",
    ).tag(config=True)

    default = Unicode(
        "",
        help="The environment of a job or schedule that names none. Empty: the first of environments.",
    ).tag(config=True)

    #: the executor's runner image: the image of the one environment when the admin lists none
    runner_image = Unicode("")

    @validate("environments")
    def _valid_environments(self, proposal):
        names = [_environment(e).name for e in proposal["value"]]
        if len(set(names)) != len(names):
            raise TraitError(f"Environments.environments: names must be unique, got {names}")
        return proposal["value"]

    @property
    def all(self) -> list:
        """Every environment, the default's order as configured."""
        if not self.environments:
            # (GPU jobs ran in the runner image before there were environments: they still may)
            return [Environment(name=DEFAULT_NAME, image=self.runner_image, gpu=True,
                                description="The lean runner: Python 3.11 with papermill, numpy and pandas")]
        return [_environment(e) for e in self.environments]

    @property
    def default_environment(self) -> Environment:
        envs = self.all
        found = [e for e in envs if e.name == self.default]
        if self.default and not found:
            raise TraitError(f"Environments.default {self.default!r} is not one of {[e.name for e in envs]}")
        return (found or envs)[0]

    def choose(self, name: Optional[str], gpus: int, requirements: tuple, runs_images: bool) -> Environment:
        """The environment a job asks for (None: the default), if it can run there; else an IntakeError that
        says why: a name not offered (400), a GPU job where GPUs are not allowed, or an image, or
        requirements, on an executor that runs no images (422)."""
        envs = {e.name: e for e in self.all}
        default = self.default_environment
        env = default if name is None else envs.get(name)
        if env is None:
            raise IntakeError(f"unknown environment {name!r}; this Hub offers {', '.join(sorted(envs))}",
                              field="/environment")
        if gpus and not env.gpu:
            raise IntakeError(f"the environment {env.name!r} does not allow GPU jobs; choose one that does, "
                              "or ask for no GPU", 422, "unsatisfiable", field="/environment")
        if not runs_images and env.name != default.name:
            raise IntakeError(f"this Hub's executor runs every job in its own Python, the environment "
                              f"{default.name!r}: it cannot run {env.name!r}", 422, "unsatisfiable",
                              field="/environment")
        if not runs_images and requirements:
            raise IntakeError("this Hub's executor runs every job in its own Python and installs no packages: "
                              "requirements need the docker executor", 422, "unsatisfiable", field="/requirements")
        return env

    def named(self, name: Optional[str]) -> Environment:
        """The environment a job was given at plan (one the admin no longer lists: an empty one, the executor's
        own image and no defaults)."""
        return next((e for e in self.all if e.name == name), Environment(name=name or "", image=""))

    def image(self, name: Optional[str]) -> Optional[str]:
        """The image a job of environment ``name`` runs in (None: the executor's own, also for a name the admin
        no longer lists)."""
        return self.named(name).image or None

    async def listing(self, executor) -> list:
        """``GET /environments``: each environment with the packages its image holds."""
        return [env.model(await executor.packages(env.image or None)) for env in self.all]
