"""A job request: one submission, decided once, whichever way it came in.

A job is asked for in five ways: a multipart upload, a JSON body (``POST /jobs``, and
``POST /schedules``, which takes the same body), a file of the user's workspace (a JSON
``path``), a schedule's run and a rerun of a job. Each is turned into one
:class:`JobRequest` here, checked as a submit checks it; the job flow
(:meth:`~hub_service.jobs.JobManager.plan` and ``submit``), the Idempotency-Key
comparison and the scheduler take nothing else.

What a user chooses for a job -- its :data:`CHOICES` -- is kept under the same names on
the job and on a schedule, copied by a rerun and by each run of a schedule, changed by a
schedule's PATCH and compared when an Idempotency-Key comes again. Adding one is a field
of :class:`JobRequest` and its reader in :data:`READERS`, both here; the store needs the
column on both tables, a migration and its place in ``job_model``; the OpenAPI document the
field; the clients a way to send it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Callable, Optional

from tornado import httputil

from .intake import (
    Bundle,
    IntakeError,
    Limits,
    about,
    check_callback_url,
    check_name,
    check_notify,
    check_parameters,
    load_json,
    parse_json_field,
    parse_notebook,
    parse_output_formats,
    parse_resources,
    parse_script,
    pointer,
    read_submission,
)
from .requirements import requirements_of, with_requirements
from .states import OUTPUT_FORMATS, Reason

#: the fields of a submission that say what to run (JSON: exactly one of notebook, path, code;
#: multipart: file, and entry inside a .zip; requirements: the packages it brings, kept with it as its
#: requirements.txt)
SOURCE_KEYS = ("notebook", "path", "code", "file", "entry", "requirements")
#: the fields of a sweep's submission that say its runs' parameters (lists of values, or the combinations)
SWEEP_KEYS = ("parameters", "runs")
#: what a rerun's body may change
RERUN_KEYS = ("parameters", "resources", "timeout")


@dataclass(frozen=True)
class JobRequest:
    """What a user asked to run and how: the notebook, the choices, and where the request came from."""

    user: str
    bundle: Bundle
    # the user's choices (:data:`CHOICES`): kept on the job and on a schedule under these names
    parameters: dict = field(default_factory=dict)
    name: str = ""
    requested: dict = field(default_factory=dict)  # cpu, memory, gpu, timeout the user asked for
    output_formats: list = field(default_factory=lambda: list(OUTPUT_FORMATS))
    callback_url: Optional[str] = None
    notify: str = "never"
    #: the admin's environment it runs in (None: the admin's default, named by the flow's plan)
    environment: Optional[str] = None
    # where it came from
    path: Optional[str] = None  # the workspace file it was read from
    schedule_id: Optional[str] = None
    rerun_of: Optional[str] = None
    sweep_id: Optional[str] = None  # the sweep it is a run of (a rerun of a run stays in its sweep)
    #: the killed run a rerun retries (its used, reason, allocated): the sizer gives it more of what ran out
    retry_of: Optional[dict] = None

    def choices(self) -> dict:
        """The user's choices, by name."""
        return {name: getattr(self, name) for name in CHOICES}

    @property
    def requirements(self) -> tuple:
        """The packages the bundle brings (its requirements.txt, checked, in normal form); () for none."""
        return requirements_of(self.bundle.files)

    def row(self) -> dict:
        """What a job keeps of its request (its sizing is added by the flow; ``build``, the record of its
        environment's build, starts as the requirements it brings)."""
        build = {"requirements": list(self.requirements)} if self.requirements else None
        return dict(self.choices(), user=self.user, input_kind=self.bundle.kind, input_name=self.bundle.name,
                    path=self.path, schedule_id=self.schedule_id, rerun_of=self.rerun_of, sweep_id=self.sweep_id,
                    build=build)

    def same_as(self, job) -> bool:
        """Whether a stored job was made from this very request: the test a repeated Idempotency-Key must pass.

        The normalised request (content hash of the notebook and its files, and every
        choice that shapes the run) is compared, not its bytes: the same notebook sent
        again with the same parameters and limits is the same request.
        """
        return (job.input_hash == self.bundle.sha256 and job.path == self.path
                and all(getattr(job, name) == value for name, value in self.choices().items()
                        if not (name == "environment" and value is None)))  # (the default, named at submit)

    def retry_words(self) -> Optional[dict]:
        """The run this retries, as :func:`~hub_service.explain.sizing_words` takes it (None: no retry)."""
        return _retry_words(self.retry_of)

    def replace(self, **changes) -> "JobRequest":
        return dataclasses.replace(self, **changes)

    @classmethod
    def of_schedule(cls, schedule, bundle: Bundle) -> "JobRequest":
        """A run of ``schedule`` (its choices as kept) with the notebook it runs now."""
        return cls(user=schedule.user, bundle=bundle, path=schedule.path, schedule_id=schedule.id,
                   **choices_of(schedule))

    @classmethod
    def again(cls, job, bundle: Bundle) -> "JobRequest":
        """``job`` once more, as it was asked for (``bundle``: its stored input); a rerun of it."""
        return cls(user=job.user, bundle=bundle, path=job.path, schedule_id=job.schedule_id, rerun_of=job.id,
                   sweep_id=job.sweep_id, retry_of=retry_of(job), **choices_of(job))


def retry_of(job) -> Optional[dict]:
    """The killed run a rerun of ``job`` retries: what it used, why it was stopped and what it had (None: it
    was not killed for running out of memory or time, so a rerun is sized as a new job)."""
    if job.error_reason not in (Reason.OOM_KILLED, Reason.TIMEOUT):
        return None
    return {"used": job.used, "reason": job.error_reason, "allocated": job.allocated}


def retry_words(job) -> Optional[dict]:
    """What :func:`~hub_service.explain.sizing_words` says of a rerun of ``job`` (None: not a retry)."""
    return _retry_words(retry_of(job))


def _retry_words(retry: Optional[dict]) -> Optional[dict]:
    if retry is None:
        return None
    return {"reason": retry["reason"], "peak_memory": (retry["used"] or {}).get("peak_memory"),
            "allocated": retry["allocated"]}


def choices_of(row) -> dict:
    """The choices a stored job or schedule keeps (copies: a change to one leaves the row as it was)."""
    return {name: _copy(getattr(row, name)) for name in CHOICES}


def _copy(value):
    return dict(value) if isinstance(value, dict) else list(value) if isinstance(value, list) else value


# -- reading the choices from a form ------------------------------------------------------------


def _parameters(form: dict, current: dict) -> dict:
    # checked against the notebook by the caller, once it has the notebook (check_parameters)
    params = parse_json_field(form.get("parameters"), "parameters")
    if params is not None and not isinstance(params, dict):
        raise IntakeError("parameters must be a JSON object of name: value", field="/parameters")
    return params or {}


def _name(form: dict, current: str) -> str:
    return check_name(form.get("name"), current)


def _environment(form: dict, current: Optional[str]) -> Optional[str]:
    """The environment's name (whether the admin offers it is the flow's check, at plan); empty: the default."""
    value = form.get("environment")
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise IntakeError("environment must be the name of one of the Hub's environments (GET /environments)",
                          field="/environment")
    return value


def _requested(form: dict, current: dict) -> dict:
    """``resources`` replaces what was asked but the time limit; ``timeout`` replaces (or, empty, drops) that."""
    requested = dict(current)
    if "resources" in form:
        requested = {k: v for k, v in requested.items() if k == "timeout"}
        requested.update(parse_resources(parse_json_field(form["resources"], "resources")))
    if "timeout" in form:
        requested.pop("timeout", None)
        if form["timeout"] not in (None, ""):
            requested.update(parse_resources(None, form["timeout"]))
    return requested


#: each choice: the form fields it is read from, and its reader ``(form, current value) -> new value``
#: (an empty field gives the choice's default)
READERS = {
    "parameters": (("parameters",), _parameters),
    "name": (("name",), _name),
    "requested": (("resources", "timeout"), _requested),
    "output_formats": (("output_formats",), lambda form, current: parse_output_formats(form.get("output_formats"))),
    "callback_url": (("callback_url",), lambda form, current: check_callback_url(form.get("callback_url"))),
    "notify": (("notify",), lambda form, current: check_notify(form.get("notify"))),
    "environment": (("environment",), _environment),
}
#: the user's choices of a job (see the module's docstring)
CHOICES = tuple(READERS)
#: the form fields the choices are read from
CHOICE_KEYS = tuple(key for keys, _read in READERS.values() for key in keys)


def read_choices(form: dict, current: dict, *, only_given: bool = False) -> dict:
    """The choices ``form`` makes, over ``current``: all of them (a submission; an empty field is a field not
    sent) or, ``only_given``, those whose fields it names (a PATCH; an empty field resets the choice)."""
    if not only_given:
        form = {k: v for k, v in form.items() if v not in (None, "")}
    return {name: read(form, current.get(name)) for name, (keys, read) in READERS.items()
            if not only_given or any(k in form for k in keys)}


def refuse_unknown(form: dict, known, says: str) -> None:
    """Refuse the fields of ``form`` not in ``known``, naming the field when it is one; ``says`` what is taken."""
    unknown = sorted(set(form) - set(known))
    if unknown:
        raise IntakeError(f"unknown field(s) {', '.join(unknown)}; {says}",
                          field=pointer(unknown[0]) if len(unknown) == 1 else None)


# -- the ways in -----------------------------------------------------------------------------


def parse_submission(content_type: str, body: bytes, headers, user: str, limits: Limits,
                     read_path: Callable[[str, str], Bundle], parsed=None, sweep: bool = False) -> tuple:
    """``(form, request)`` of a submission's body (multipart or JSON); IntakeError says what is wrong and where.

    ``read_path(user, path)`` reads a workspace file (:meth:`Workspaces.read`). Shared by
    ``POST /jobs`` and ``POST /schedules``, which takes the same body (and has read a JSON
    one already: ``parsed``, so that it is not parsed twice), and ``POST /sweeps`` (``sweep``:
    the form's ``parameters`` and ``runs`` are lists of values, left in the form for
    :mod:`~hub_service.sweeps` to expand; the request has none). Blocking: call it in a thread.
    """
    if content_type.startswith("multipart/form-data"):
        args, files = {}, {}
        try:
            httputil.parse_body_arguments(content_type, body, args, files, headers)
        except httputil.HTTPInputError as e:  # no boundary, a part without a name, undecodable headers
            raise IntakeError(f"malformed multipart/form-data body: {e}") from None
        form = {k: v[0].decode("utf-8", "replace") for k, v in args.items()}
        if "requirements" in files:  # (sent as a file beside the notebook)
            form["requirements"] = files["requirements"][0].body.decode("utf-8", "replace")
        if "file" not in files:
            raise IntakeError("multipart upload needs a 'file' part (.ipynb, .py or .zip)", field="/file")
        upload = files["file"][0]
        with about("/file"):
            bundle = read_submission(upload.filename or "upload.ipynb", upload.body, entry=form.get("entry"),
                                     max_members=limits.bundle_max_files, max_bytes=limits.bundle_max_bytes)
    elif content_type.startswith("application/json") or not content_type:
        form = parsed if parsed is not None else load_json(body, "request body") if body else {}
        if not isinstance(form, dict):
            raise IntakeError("request body must be a JSON object")
        bundle = _json_source(form, user, read_path)
    else:
        raise IntakeError(f"unsupported Content-Type {content_type!r}: use multipart/form-data or JSON", 415)
    bundle = dataclasses.replace(bundle, files=with_requirements(bundle.files, form.get("requirements")))
    requirements_of(bundle.files)  # (a .zip's own, checked here too: a 400 at /requirements naming the line)
    own = {k: v for k, v in form.items() if k not in SWEEP_KEYS} if sweep else form
    choices = read_choices(own, {"name": bundle.name, "requested": {}})
    choices["parameters"] = check_parameters(bundle.notebook, choices["parameters"], limits.max_parameters_size)
    path = form.get("path") if isinstance(form.get("path"), str) else None
    return form, JobRequest(user=user, bundle=bundle, path=path, **choices)


def _json_source(body: dict, user: str, read_path: Callable) -> Bundle:
    """The notebook of a JSON submission: exactly one of ``notebook``, ``path`` (workspace) or ``code``."""
    sources = [k for k in ("notebook", "path", "code") if body.get(k) not in (None, "")]
    if len(sources) != 1:
        raise IntakeError("JSON submission needs exactly one of 'notebook' (the .ipynb JSON), "
                          "'path' (in your workspace) or 'code' (Python source)")
    source = sources[0]
    with about(pointer(source)):
        if source == "notebook":
            nb = body["notebook"]
            data = json.dumps(nb).encode() if isinstance(nb, (dict, list)) else str(nb).encode()
            with about("/name"):
                name = check_name(body.get("name"), "notebook.ipynb")
            return Bundle(parse_notebook(data, "notebook"), "ipynb", name)
        if source == "code":
            if not isinstance(body["code"], str):
                raise IntakeError("'code' must be a string of Python source")
            return Bundle(parse_script(body["code"].encode(), "code.py"), "py", "code.py")
        return read_path(user, body["path"])


def rerun_request(job, body, read_input: Callable[[], Bundle], limits: Limits) -> JobRequest:
    """``job`` again, with what a rerun's JSON body changes: ``parameters`` (in place of the job's, checked as a
    submit checks them), ``resources`` and ``timeout`` (replacing the job's requests of the same names).

    ``read_input()`` reads the job's stored input (IntakeError when it has none).
    """
    if not isinstance(body, dict):
        raise IntakeError("request body must be a JSON object like {\"parameters\": {\"alpha\": 0.5}}")
    refuse_unknown(body, RERUN_KEYS, f"a re-run takes only {', '.join(repr(f) for f in RERUN_KEYS)}")
    bundle, changes = None, {}
    if "parameters" in body:
        if not isinstance(body["parameters"], dict):
            raise IntakeError("parameters must be a JSON object of name: value", field="/parameters")
        bundle = read_input()
        changes["parameters"] = check_parameters(bundle.notebook, body["parameters"], limits.max_parameters_size)
    requested = parse_resources(body.get("resources"), body.get("timeout"))
    request = JobRequest.again(job, bundle or read_input())
    return request.replace(requested=dict(request.requested or {}, **requested), **changes)
