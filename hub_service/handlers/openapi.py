"""``GET /openapi.json``: the REST contract, machine-readable.

It is held to what the handlers really answer: the test suite runs schemathesis over
it against a real Hub (tests/test_openapi.py), so a status, a field or a media type
that drifts from the handlers fails there.
"""

from __future__ import annotations

from .. import __version__
from ..intake import NOTIFY_CHOICES, PARAMETER_TYPES
from ..outputs import MEDIA_TYPES
from ..schedules import MISSED, OVERLAP
from ..states import OUTPUT_FORMATS, REASONS, STATUSES
from .base import APIHandler

_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
_ERR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_JOB = {"description": "the job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}
_OBJECT = {"type": "object"}
_NULLABLE_STRING = {"type": "string", "nullable": True}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _media(description: str, *media_types: str, headers: dict | None = None) -> dict:
    """A non-JSON answer; a notebook (application/x-ipynb+json) is a JSON object all the same."""
    return {"description": description, **({"headers": headers} if headers else {}), "content": {
        m.split(";")[0]: {"schema": {"type": "object" if m.endswith("json") else "string"}} for m in media_types}}


def _header(description: str, **schema) -> dict:
    return {"description": description, "schema": {"type": "string", **schema}}


#: what every answer carrying a user's content says (handlers/base.py serve_user_content)
_USER_CONTENT = {
    "Content-Security-Policy": _header("sandbox: a browser runs none of its scripts, in an origin of its own",
                                       enum=["sandbox"]),
    "X-Content-Type-Options": _header("never sniffed as another type", enum=["nosniff"]),
}


def _op(op_id, summary, responses, params=(), body=None, errors=("400", "401", "403", "404")):
    """An operation; every one may answer the JSON error of the listed statuses."""
    op = {"operationId": op_id, "summary": summary, "parameters": list(params),
          "responses": dict(responses, **{status: _ERR for status in errors})}
    if body:
        op["requestBody"] = body
    return op


#: a yes/no query argument, as handlers' flag_argument reads it
_FLAG = {"type": "string", "enum": ["0", "1", "true", "false"]}
#: ``status=`` of a listing: statuses, comma-separated (the pattern refuses what the handler refuses)
_STATUS_LIST = {"type": "string", "pattern": "^(({s})(,({s}))*)?$".format(s="|".join(STATUSES))}


def _query(name: str, schema: dict, description: str = "") -> dict:
    return {"name": name, "in": "query", "schema": schema, **({"description": description} if description else {})}


def _metrics_schema() -> dict:
    point = {"type": "object", "required": ["step", "value", "time"], "properties": {
        "step": {"type": "integer", "minimum": 0, "description": "the report's step (one after the metric's "
                 "last when the report gave none, from 0)"},
        "value": {"type": "number"},
        "time": {"type": "number", "description": "when the runner read it, in seconds since the epoch"}}}
    return {"type": "object", "required": ["job_id", "final", "series"], "properties": {
        "job_id": {"type": "string"},
        "final": {"type": "object", "additionalProperties": {"type": "number"},
                  "description": "the last value of each metric (the job's metrics)"},
        "series": {"type": "array", "items": {"type": "object", "required": ["name", "points"], "properties": {
            "name": {"type": "string"}, "points": {"type": "array", "items": point}}}}}}


def _schemas() -> dict:
    job = {"type": "object", "required": ["id", "user", "status", "progress", "resources"], "properties": {
        "id": {"type": "string", "nullable": True, "description": "null only on a dry run's answer"},
        "dry_run": {"type": "boolean", "description": "present (true) only on a dry run's answer"},
        "user": {"type": "string"}, "name": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES)},
        "input": {"type": "object", "properties": {
            "kind": {"type": "string", "enum": ["ipynb", "py", "zip"]}, "name": {"type": "string"},
            "path": _NULLABLE_STRING, "sha256": {"type": "string"}}},
        "parameters": _OBJECT,
        "parameters_cut": {"type": "array", "items": {"type": "string"},
                           "description": "only in lists of jobs and status events: the parameters whose "
                                          "values were cut short there (GET /jobs/{id} has them whole)"},
        "progress": {"type": "object", "properties": {
            "cells_done": {"type": "integer", "description": "code cells that ran to their end without an error "
                           "(never the one running, nor one that raised or was stopped)"},
            "cells_total": {"type": "integer", "nullable": True, "description": "code cells of the notebook"},
            "phase": {"type": "string", "nullable": True, "enum": ["building environment", None],
                      "description": "what a running job waits for before its first cell: 'building "
                                     "environment' while the image of its requirements is built"}}},
        "environment": {"type": "string", "nullable": True, "description": "the environment it runs in "
                        "(GET /environments); null only for jobs made before environments"},
        "build": {"type": "object", "nullable": True, "description": "the build of its environment with the "
                  "requirements it brought (null: it brought none)", "properties": {
            "requirements": {"type": "array", "items": {"type": "string"}, "description": "normal form"},
            "status": {"type": "string", "enum": ["building", "ready", "failed"]},
            "cached": {"type": "boolean", "description": "true: an image built before (or by another job "
                       "meanwhile) was used, and seconds is 0"},
            "seconds": {"type": "number"}, "waited": {"type": "number", "description": "seconds this job "
                                                       "waited for another job's build of the same key"},
            "phases": {"type": "object", "additionalProperties": {"type": "number"},
                       "description": "seconds of download, install and commit"},
            "size": {"type": "integer", "description": "bytes the derived image adds to its environment's"},
            "wheels": {"type": "integer"}, "key": {"type": "string"}, "image": {"type": "string"},
            "base": {"type": "string"}}},
        "resources": {"type": "object", "properties": {
            "requested": _OBJECT, "predicted": _OBJECT, "used": _OBJECT,
            "allocated": {"type": "object", "properties": {"gpu_devices": {
                "type": "array", "items": {"type": "integer"},
                "description": "the GPUs (the host's NVML indices) a GPU job was given when it started, "
                               "on a backend that hands GPUs out by device"}}},
            "bounds": {"type": "object", "description": "only on a dry run's answer: the admin's "
                       "[least, most] for cpu (cores), memory (bytes) and timeout (seconds)",
                       "additionalProperties": {"type": "array", "items": {"type": "number"},
                                                "minItems": 2, "maxItems": 2}},
            "explanation": {"type": "string", "description": "only on a dry run's answer: why the job would "
                            "get its memory and time limit, in plain words"}}},
        "notebook_parameters": {
            "type": "array", "nullable": True,
            "description": "only on a dry run's answer (a submit's or a rerun's): the notebook's parameters cell as form fields (null "
                           "without one); value is the default as JSON, type 'expr' when it is no literal",
            "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "type": {"type": "string", "enum": list(PARAMETER_TYPES)},
                "value": {"description": "any JSON value"}, "source": {"type": "string"}, "help": {"type": "string"},
                "annotation": {"type": "string", "nullable": True, "description": "the type annotation, if any "
                               "(rows: int = 10); the value's type is checked against it, else against the default's"}}}},
        "timeout": {"type": "number", "nullable": True},
        "output_formats": {"type": "array", "items": {"type": "string", "enum": ["ipynb", "html", "md"]}},
        "callback_url": _NULLABLE_STRING, "notify": {"type": "string", "enum": list(NOTIFY_CHOICES)},
        "schedule_id": _NULLABLE_STRING, "rerun_of": _NULLABLE_STRING,
        "sweep_id": {"type": "string", "nullable": True, "description": "the sweep the job is a run of"},
        "backend": _NULLABLE_STRING, "exit_code": {"type": "integer", "nullable": True},
        "metrics": {"type": "object", "additionalProperties": {"type": "number"},
                    "description": "the last value of each metric the notebook reported (GET …/metrics has "
                                   "the series); {} when it reported none"},
        "error": {"type": "object", "nullable": True, "properties": {
            "reason": {"type": "string", "enum": list(REASONS), "description": "the code, for machines"},
            "summary": {"type": "string", "description": "the reason in plain words, for people: 'Ran out of "
                        "memory', 'Cancelled by alice'"},
            "message": {"type": "string", "description": "what happened, naming the cell as a person finds it "
                        "('(in code cell 2 of 3, In [2])'): the one that raised, or the one running when the "
                        "run was stopped"},
            "cell": {"type": "integer", "nullable": True, "description": "index in the submitted notebook "
                     "(from 0, markdown cells counted) of the cell that raised or was running when the run "
                     "was stopped"}}},
        "cancelled_by": {"type": "string", "nullable": True,
                         "description": "the Hub user who cancelled the job (null: not cancelled, or by the "
                                        "service or a schedule; error.message says which)"},
        "has_output": {"type": "boolean", "description": "an output notebook exists now (a cancelled or "
                       "killed run's too: see partial)"},
        "outputs": {"type": "array", "items": {"type": "string", "enum": [*OUTPUT_FORMATS, "metrics"]},
                    "description": "the formats GET …/output serves now (renders are made on request; 'metrics': "
                                   "metrics.json, once a job that reported metrics ended); [] when there is no "
                                   "output"},
        "partial": {"type": "boolean", "description": "the output notebook is of a run that did not finish "
                    "(cancelled, timeout, oom_killed, infrastructure): cells after the stop never ran"},
        "created": {"type": "string", "format": "date-time", "nullable": True,
                    "description": "null only on a dry run's answer"},
        "started": {"type": "string", "format": "date-time", "nullable": True},
        "finished": {"type": "string", "format": "date-time", "nullable": True},
    }}
    error = {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}, "status": {"type": "integer"},
            "field": {"type": "string", "pattern": "^(/([^~/]|~[01])*)+$", "example": "/resources/memory",
                      "description": "present only when the error is about one field of the request: an RFC "
                                     "6901 JSON pointer into the request as its JSON body spells it ('/name', "
                                     "'/path', '/notebook', '/code', '/parameters' or '/parameters/NAME', "
                                     "'/resources/cpu', '/resources/memory', '/resources/gpu', '/timeout', "
                                     "'/output_formats', '/notify', '/callback_url'; schedules also '/cron', "
                                     "'/timezone', '/overlap', '/missed', '/paused', '/from_job'; sweeps "
                                     "'/parameters/NAME/INDEX' (a grid's value), '/runs/INDEX/NAME', '/runs'); a "
                                     "multipart "
                                     "form's field is named by the same pointer, its upload by '/file' (and "
                                     "'/entry')"}}}}}
    capacity = {"type": "object", "properties": {
        "cpu": {"type": "number"}, "memory": {"type": "integer"}, "gpu": {"type": "integer"},
        "max_running": {"type": "integer"}, "per_user": {"type": "integer"}}}
    return {"Job": job, "Error": error, "Capacity": capacity, "Schedule": _schedule_schema(),
            "Sweep": _sweep_schema()}


def _schedule_schema() -> dict:
    """A schedule as the API answers it."""
    when = {"type": "string", "format": "date-time"}
    return {"type": "object", "required": ["id", "user", "cron", "timezone", "paused", "source", "next_runs"],
            "properties": {
        "id": {"type": "string"}, "user": {"type": "string"}, "name": {"type": "string"},
        "cron": {"type": "string"}, "timezone": {"type": "string"},
        "overlap": {"type": "string", "enum": list(OVERLAP)}, "missed": {"type": "string", "enum": list(MISSED)},
        "paused": {"type": "boolean"},
        "sweep": {"type": "boolean", "description": "each run is a sweep of the parameters' lists of values"},
        "source": {"type": "object", "properties": {
            "kind": {"type": "string", "enum": ["path", "snapshot"]}, "path": _NULLABLE_STRING,
            "input_name": {"type": "string"}, "sha256": _NULLABLE_STRING}},
        "parameters": _OBJECT, "resources": _OBJECT, "timeout": {"type": "number", "nullable": True},
        "output_formats": {"type": "array", "items": {"type": "string", "enum": ["ipynb", "html", "md"]}},
        "callback_url": _NULLABLE_STRING, "notify": {"type": "string", "enum": list(NOTIFY_CHOICES)},
        "environment": {"type": "string", "nullable": True, "description": "null: the admin's default"},
        "created": when, "updated": when,
        "next_runs": {"type": "array", "items": when, "maxItems": 5,
                      "description": "the next 5 run times, UTC; empty while paused"},
        "last_runs": {"type": "array", "maxItems": 10, "description": "newest first", "items": {
            "type": "object", "properties": {
                "id": {"type": "string"}, "status": {"type": "string", "enum": list(STATUSES)},
                "reason": {"type": "string", "nullable": True, "enum": list(REASONS) + [None]},
                "summary": {"type": "string", "nullable": True, "description": "the reason in words"},
                "created": when, "finished": dict(when, nullable=True)}}},
        "failures_in_a_row": {"type": "integer"},
        "skipped": {"type": "integer", "description": "runs left out (overlap=skip, missed=skip)"},
        "last_skipped": dict(when, nullable=True),
        "last_error": {"type": "string", "nullable": True,
                       "description": "why the last run could not be made (e.g. its notebook is gone)"},
        "url": {"type": "string"},
    }}


_SCHEDULE_ID = {"name": "schedule_id", "in": "path", "required": True,
                "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
_SCHEDULE = {"description": "the schedule",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Schedule"}}}}


def _timing_fields() -> dict:
    return {
        "cron": {"type": "string", "description": "5 fields (minute hour day-of-month month day-of-week) or "
                                                  "@hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually"},
        "timezone": {"type": "string", "description": "IANA name (default UTC); runs at its wall-clock time"},
        "overlap": {"type": "string", "enum": list(OVERLAP),
                    "description": "skip (default): no run while the previous one is queued or running; queue"},
        "missed": {"type": "string", "enum": list(MISSED),
                   "description": "runs due while the service was down: skip (default), or run_once"},
        "paused": {"type": "boolean"},
    }


def _schedule_body() -> dict:
    """POST /schedules: what POST /jobs takes, plus the timing; or from_job."""
    body = _submit_body()
    form = body["content"]["multipart/form-data"]["schema"]
    form["properties"].update(_timing_fields(), paused={"type": "string", "enum": ["true", "false"]})
    form["required"] = ["file", "cron"]
    as_json = body["content"]["application/json"]
    as_json["schema"]["properties"].update(_timing_fields(), from_job={
        "type": "string", "description": "a job whose source, parameters and fields the schedule takes"})
    as_json["schema"]["required"] = ["cron"]
    as_json["schema"]["description"] = "exactly one of notebook, path, code or from_job"
    as_json["example"] = {"code": "# %%\nprint('hello')\n", "name": "nightly", "cron": "30 2 * * *",
                          "timezone": "Europe/Berlin"}
    return body


def _patch_body() -> dict:
    props = dict(_timing_fields(), parameters=_OBJECT, name={"type": "string"}, timeout={
        "type": "number", "nullable": True}, resources={"type": "object", "properties": {
            "cpu": {"type": "number"}, "memory": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "gpu": {"type": "integer"}}},
        output_formats={"type": "array", "items": {"type": "string"}},
        callback_url={"type": "string", "format": "uri"}, notify={"type": "string", "enum": list(NOTIFY_CHOICES)},
        environment={"type": "string", "description": "one of GET /environments; empty: the admin's default"})
    return {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "properties": props}, "example": {"paused": True}}}}


def _sweep_schema() -> dict:
    """A sweep as the API answers it (a listing leaves out runs and best)."""
    when = {"type": "string", "format": "date-time"}
    run = {"type": "object", "required": ["job_id", "parameters", "status"], "properties": {
        "job_id": {"type": "string"}, "parameters": _OBJECT, "status": {"type": "string", "enum": list(STATUSES)},
        "duration": {"type": "number", "nullable": True, "description": "seconds it ran (so far); null before"},
        "used": {"type": "object", "description": "what it used: peak_memory (bytes), cpu_seconds, wall_seconds"},
        "allocated": {"type": "object", "description": "what it was given: cpu, memory, timeout"},
        "metrics": {"type": "object", "additionalProperties": {"type": "number"},
                    "description": "the last value of each metric it reported"},
        "error": {"type": "object", "nullable": True, "description": "as the job's"},
        "rerun_of": {"type": "string", "nullable": True, "description": "the run of the sweep this one repeats "
                     "(and stands in for)"},
        "created": when, "started": dict(when, nullable=True), "finished": dict(when, nullable=True)}}
    return {"type": "object", "required": ["id", "user", "status", "grid", "size", "counts"], "properties": {
        "id": {"type": "string"}, "user": {"type": "string"}, "name": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES), "description": "from its runs': running while any "
                   "runs, queued while any waits, else succeeded if all did, failed if any failed, else cancelled"},
        "grid": {"type": "object", "description": "as submitted: {parameters: {name: [values]}} or {runs: [...]}"},
        "size": {"type": "integer", "description": "the runs it was made with"},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "runs by status"},
        "metrics": {"type": "array", "items": {"type": "string"}, "description": "the metrics its runs reported"},
        "schedule_id": _NULLABLE_STRING, "created": when,
        "runs": {"type": "array", "items": run, "description": "one per combination, in the grid's order (the "
                 "last name varying fastest); a rerun stands in for the run it repeats"},
        "best": {"type": "object", "description": "with ?metric=: the succeeded run with the least (mode=min) or "
                 "greatest (mode=max) final value", "properties": {
                     "metric": {"type": "string"}, "mode": {"type": "string", "enum": ["min", "max"]},
                     "job_id": _NULLABLE_STRING, "value": {"type": "number", "nullable": True}}},
        "rerun": {"type": "array", "items": {"type": "string"}, "description": "POST …/rerun only: the new jobs"},
    }}


_SWEEP_ID = {"name": "sweep_id", "in": "path", "required": True,
             "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
_SWEEP = {"description": "the sweep",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Sweep"}}}}


def _sweep_paths() -> dict:
    body = _submit_body()
    grid = "each name: a list of values (the runs are their product; a value that is no list is the same in every run)"
    body["content"]["multipart/form-data"]["schema"]["properties"].update(
        parameters={"type": "string", "description": "JSON: " + grid},
        runs={"type": "string", "description": "JSON: the combinations, a list of {name: value} (instead of "
                                               "parameters)"})
    as_json = body["content"]["application/json"]
    as_json["schema"]["properties"].update(
        parameters={"type": "object", "additionalProperties": {"type": "array"}, "description": grid},
        runs={"type": "array", "items": _OBJECT, "description": "the combinations (instead of parameters)"})
    as_json["example"] = {"code": "# %% tags=[\"parameters\"]\nlr = 0.1\n", "parameters": {"lr": [0.01, 0.1, 1]}}
    metric = [_query("metric", {"type": "string"}, "mark the best run by this metric's final value"),
              _query("mode", {"type": "string", "enum": ["min", "max"]}, "best: the least (default) or greatest")]
    return {
        "/sweeps": {
            "get": _op("listSweeps", "own sweeps, newest first (admins: user=, all=1)", {"200": _json(
                "a page of sweeps", {"type": "object", "required": ["sweeps", "next_cursor"], "properties": {
                    "sweeps": {"type": "array", "items": {"$ref": "#/components/schemas/Sweep"}},
                    "next_cursor": _NULLABLE_STRING}})}, [
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
                _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
                _query("user", {"type": "string"}, "admins: this user's sweeps"),
                _query("all", _FLAG, "admins: everyone's")]),
            "post": _op("submitSweep", "one job per combination of parameter values, all stored or none (a "
                        "bad value: 400 at /parameters/NAME/INDEX; more runs than the admin's limit: 400); a "
                        "repeated Idempotency-Key returns the first sweep (200), or 422 if used for another "
                        "request", {"201": _SWEEP, "200": _SWEEP},
                        [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 255}},
                         *metric], body, errors=("400", "401", "403", "404", "413", "415", "422")),
        },
        "/sweeps/{sweep_id}": {
            "get": _op("getSweep", "one sweep: its grid, a row per run, the best run for a metric", {"200": _SWEEP},
                       [_SWEEP_ID, *metric]),
            "delete": _op("deleteSweep", "delete a sweep with all its runs and their outputs (runs not ended are "
                          "cancelled first; 409 while one is still stopping, or a rerun of it was stored "
                          "first)", {"204": {"description": "deleted"}},
                          [_SWEEP_ID], errors=("401", "403", "404", "409"))},
        "/sweeps/{sweep_id}/cancel": {"post": _op("cancelSweep", "cancel every run not ended (202 while a "
                                                  "running one is stopping; 409: none left)",
                                                  {"200": _SWEEP, "202": _SWEEP}, [_SWEEP_ID, *metric],
                                                  errors=("400", "401", "403", "404", "409"))},
        "/sweeps/{sweep_id}/rerun": {"post": _op(
            "rerunSweep", "run the ended runs again, each as its job's rerun, in its place: all stored together "
                          "or none (a run refused: its 4xx, nothing made; 409: no run to rerun; 404: the sweep "
                          "was deleted while they were being made, and none is stored)",
            {"201": _SWEEP}, [_SWEEP_ID, *metric], body={"required": False, "content": {"application/json": {
                "schema": {"type": "object", "additionalProperties": False, "properties": {
                    "failed_only": {"type": "boolean", "description": "only the failed runs"}}},
                "example": {"failed_only": True}}}},
            errors=("400", "401", "403", "404", "409", "422"))},
    }


def _schedule_paths() -> dict:
    listing = _json("schedules", {"type": "object", "required": ["schedules"], "properties": {
        "schedules": {"type": "array", "items": {"$ref": "#/components/schemas/Schedule"}}}})
    return {
        "/schedules": {
            "get": _op("listSchedules", "own schedules, newest first (admins: user=, all=1)", {"200": listing}, [
                _query("user", {"type": "string"}, "admins: this user's schedules"),
                _query("all", _FLAG, "admins: everyone's")]),
            "post": _op("createSchedule", "run a notebook on a cron (the body of POST /jobs plus the timing)",
                        {"201": _SCHEDULE}, body=_schedule_body(),
                        errors=("400", "401", "403", "404", "413", "415", "422")),
        },
        "/schedules/{schedule_id}": {
            "get": _op("getSchedule", "one schedule", {"200": _SCHEDULE}, [_SCHEDULE_ID]),
            "patch": _op("updateSchedule", "change a schedule; pause = {\"paused\": true}", {"200": _SCHEDULE},
                         [_SCHEDULE_ID], _patch_body(), errors=("400", "401", "403", "404", "413", "422")),
            "delete": _op("deleteSchedule", "delete a schedule (the jobs it made stay)",
                          {"204": {"description": "gone"}}, [_SCHEDULE_ID], errors=("401", "403", "404")),
        },
        "/schedules/{schedule_id}/run": {"post": _op("runSchedule", "run the schedule now", {"201": _JOB},
                                                     [_SCHEDULE_ID], errors=("401", "403", "404"))},
    }


def _submit_body() -> dict:
    fields = {
        "name": {"type": "string"},
        "timeout": {"type": "number", "description": "seconds"},
        "callback_url": {"type": "string", "format": "uri"},
        "notify": {"type": "string", "enum": list(NOTIFY_CHOICES),
                   "description": "mail the owner when the job fails, or whenever it ends (default never)"},
        "entry": {"type": "string", "description": "file to run inside a .zip bundle"},
        "environment": {"type": "string", "description": "one of GET /environments (default: the admin's); "
                        "unknown: 400 at /environment"},
        "requirements": {"type": "string", "description": "a requirements file's text: plain specifiers only "
                         "(no options, URLs, VCS or paths: 400 at /requirements naming the line); installed from "
                         "wheels on top of the environment. A .zip brings its own as requirements.txt"},
    }
    form = dict(fields, **{
        "file": {"type": "string", "format": "binary", "description": ".ipynb, .py or .zip"},
        "parameters": {"type": "string", "description": "JSON object of notebook parameters"},
        "resources": {"type": "string", "description": 'JSON: {"cpu": 1.5, "memory": "2GB", "gpu": 0}'},
        "output_formats": {"type": "string", "description": "comma-separated: ipynb,html,md"},
    })
    as_json = dict(fields, **{
        "notebook": {"type": "object", "description": "the .ipynb JSON"},
        "path": {"type": "string", "description": "a notebook in your workspace"},
        "code": {"type": "string", "description": "Python source"},
        "parameters": {"type": "object"},
        "resources": {"type": "object", "properties": {
            "cpu": {"type": "number"}, "memory": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "gpu": {"type": "integer"}, "timeout": {"type": "number"}}},
        "output_formats": {"type": "array", "items": {"type": "string"}},
    })
    return {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": form}},
        "application/json": {"schema": {"type": "object", "properties": as_json,
                                        "description": "exactly one of notebook, path or code"},
                             "example": {"code": "# %%\nprint('hello')\n", "name": "hello",
                                         "resources": {"cpu": 0.5, "memory": "256MB"}, "timeout": 60}},
    }}


def _usage_schema() -> dict:
    counts = ("jobs", "succeeded", "failed", "cancelled", "active")
    sums = ("run_hours", "cpu_hours_allocated", "cpu_hours_used", "gib_hours_allocated", "gib_hours_peak")
    figures = {**{k: {"type": "integer"} for k in counts}, **{k: {"type": "number"} for k in sums}}
    return {"type": "object", "required": ["since", "until", "users", "totals"], "properties": {
        "since": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"},
        "users": {"type": "array", "items": {"type": "object", "required": ["user", *figures],
                                             "properties": dict(figures, user={"type": "string"})}},
        "totals": {"type": "object", "required": list(figures), "properties": figures}}}


def _rerun_body() -> dict:
    return {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "parameters": {"type": "object", "description": "the new job's parameters, in place of "
                                                            "the job's own (omit: the job's own)"},
            "resources": {"type": "object", "description": "requests that replace the job's own of the same "
                          "names, checked as a submit's", "properties": {
                              "cpu": {"type": "number"}, "memory": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                              "gpu": {"type": "integer"}, "timeout": {"type": "number"}}},
            "timeout": {"type": "number", "description": "seconds: the time limit to request"}}},
        "example": {"parameters": {"alpha": 0.5}, "resources": {"memory": "2GB"}, "timeout": 600}}}}


def spec(server_url: str) -> dict:
    """The OpenAPI 3 document of the service."""
    page = {"type": "object", "required": ["jobs", "next_cursor"], "properties": {
        "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}, "next_cursor": _NULLABLE_STRING}}
    job_links = {name: {"operationId": op_id, "parameters": {"job_id": "$response.body#/id"}}
                 for name, op_id in (("GetJob", "getJob"), ("CancelJob", "cancelJob"), ("JobLogs", "getJobLogs"))}
    submitted = dict(_JOB, links=job_links)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Notebook Jobs", "version": __version__,
                 "description": "Run notebooks as parameterized, sandboxed jobs on JupyterHub. Errors are "
                                "JSON {\"error\": {code, message, status}} with a 4xx status, and field (a "
                                "JSON pointer such as /resources/memory) when the error is about one field of "
                                "the request."},
        "servers": [{"url": server_url}],
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "Authorization",
                                          "description": "token <JupyterHub API token>"}},
            "schemas": _schemas(),
        },
        "security": [{"token": []}],
        "paths": {
            "/": {"get": _op("getService", "version, backend and capacity", {"200": _json("service info", {
                "type": "object", "properties": {
                    "name": {"type": "string"}, "version": {"type": "string"}, "backend": _OBJECT,
                    "capacity": {"$ref": "#/components/schemas/Capacity"}, "user": {"type": "string"},
                    "admin": {"type": "boolean"}}})})},
            "/health": {"get": dict(_op("getHealth", "health (no auth)", {"200": _json("ok", {
                "type": "object", "properties": {"status": {"type": "string"}, "version": {"type": "string"},
                                                 "backend": _OBJECT, "running": {"type": "integer"}}})},
                errors=()), security=[])},
            "/jobs": {
                "get": _op("listJobs", "list own jobs (admins: user=, all=1)", {"200": _json("a page of jobs", page)}, [
                    _query("status", _STATUS_LIST, "comma-separated statuses"),
                    _query("q", {"type": "string"}, "in the name, file name or id prefix"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
                    _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
                    _query("sort", {"type": "string", "enum": ["-created", "created"]}),
                    _query("user", {"type": "string"}, "admins: this user's jobs"),
                    _query("all", _FLAG, "admins: everyone's"),
                    _query("schedule", {"type": "string"}, "only the runs of this schedule"),
                    _query("sweep", {"type": "string"}, "only the runs of this sweep"),
                    _query("full_parameters", _FLAG, "every parameter value whole (else a value over 200 "
                           "characters of JSON is cut to a string of its start, named in parameters_cut)")]),
                "post": _op(
                    "submitJob",
                    "submit a notebook (dry_run=1: validate and size only; 200 + the would-be job, id null, "
                    "nothing stored); a repeated Idempotency-Key returns the first job (200), or 422 if that key "
                    "was used for another request",
                    {"201": submitted, "200": _JOB},
                    [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 255}},
                     _query("dry_run", _FLAG)],
                    _submit_body(), errors=("400", "401", "403", "404", "413", "415", "422")),
            },
            "/jobs/{job_id}": {
                "get": _op("getJob", "one job", {"200": _JOB}, [_JOB_ID]),
                "delete": _op("deleteJob", "delete a job (a queued or running one is cancelled first)",
                              {"204": {"description": "gone"}}, [_JOB_ID], errors=("401", "403", "404", "409"))},
            "/jobs/{job_id}/cancel": {"post": _op("cancelJob", "cancel; 202 while a running job is stopping",
                                                  {"200": _JOB, "202": _JOB}, [_JOB_ID],
                                                  errors=("401", "403", "404", "409"))},
            "/jobs/{job_id}/rerun": {"post": _op(
                "rerunJob", "run again (sized up after an OOM or timeout kill); with a body, with these "
                            "parameters and resource requests instead of the job's (checked as a submit checks "
                            "them: 413 parameters too large, 422 unsatisfiable or nothing to rerun); dry_run=1: "
                            "200 + the would-be job (id null, resources.allocated, bounds and explanation in "
                            "words), nothing stored",
                {"201": _JOB, "200": _JOB}, [_JOB_ID, _query("dry_run", _FLAG)], body=_rerun_body(),
                errors=("400", "401", "403", "404", "413", "422"))},
            "/jobs/{job_id}/output": {"get": _op(
                "getJobOutput", "output notebook or render, or (format=metrics) metrics.json: each metric's "
                                "final value and series (404 when the job reported none); 409 until the job ended",
                {"200": _media("the output (download=1: as an attachment)", *MEDIA_TYPES.values(), headers=dict(
                    _USER_CONTENT, **{"Content-Disposition": _header(
                        "with download=1: attachment; filename=\"ASCII stand-in\"; filename*=UTF-8''name "
                        "(RFC 6266)")}))},
                [_JOB_ID, _query("format", {"type": "string", "enum": list(MEDIA_TYPES)}),
                 _query("download", _FLAG)],
                errors=("400", "401", "403", "404", "409"))},
            "/jobs/{job_id}/input": {"get": _op("getJobInput", "the submitted notebook",
                                                {"200": _media("ipynb", MEDIA_TYPES["ipynb"], headers=_USER_CONTENT)},
                                                [_JOB_ID])},
            "/jobs/{job_id}/logs": {"get": _op("getJobLogs", "log (follow=1 streams until the job ends)",
                                               {"200": _media("text", "text/plain", headers=_USER_CONTENT)},
                                               [_JOB_ID, _query("follow", {"type": "string",
                                                                           "enum": ["0", "1", "true", "false"]})])},
            "/jobs/{job_id}/events": {"get": _op("getJobEvents", "server-sent events until the job ends", {"200": {
                "description": "event stream: 'status' (data: {event, job}), the runner's 'started' ({cells_total}), "
                               "'cell_started' ({cell, position}: position is the running code cell's place, from "
                               "1, as progress counts) and 'cell_finished' ({cell, cells_done, status}: the runner's "
                               "count, a cell that raised included), 'metric' ({step, values, time}: one "
                               "report of the notebook, values by name, as GET …/metrics keeps them), "
                               "'log' (data: {event, text}); "
                               "a comment line every 15 s keeps it open",
                "content": {"text/event-stream": {"schema": {"type": "object", "properties": {
                    "event": {"type": "string"}, "data": {"type": "string", "description": "a JSON object"}}}}}}},
                [_JOB_ID])},
            "/jobs/{job_id}/metrics": {"get": _op(
                "getJobMetrics", "the numbers the notebook reported ('PROGRESS: {json}' lines or "
                "notebook_jobs.report), one series per metric, by name, each in step order",
                {"200": _json("metrics", _metrics_schema())},
                [_JOB_ID, _query("name", {"type": "string"}, "only this metric's series"),
                 _query("since_step", {"type": "integer", "minimum": -1, "maximum": 2**63 - 1},
                        "only the points after this step (for polling: the last step seen)")])},
            "/environments": {"get": _op("listEnvironments", "the environments a job may run in, with the "
                                         "packages each image holds", {"200": _json("environments", {
                "type": "object", "required": ["default", "environments"], "properties": {
                    "default": {"type": "string"}, "environments": {"type": "array", "items": {
                        "type": "object", "required": ["name", "packages"], "properties": {
                            "name": {"type": "string"}, "description": {"type": "string"},
                            "image": {"type": "string"}, "gpu": {"type": "boolean"},
                            "resources": {"type": "object", "description": "default requests (cpu, memory in "
                                          "bytes, timeout in seconds) of a job that asks for none"},
                            "packages": {"type": "array", "items": {"type": "object", "properties": {
                                "name": {"type": "string"}, "version": {"type": "string"}}}}}}}}})},
                errors=("401", "403"))},
            "/notebooks": {"get": _op("listNotebooks", "notebooks in your workspace", {"200": _json("list", {
                "type": "object", "properties": {"workspace": {"type": "string"}, "notebooks": {
                    "type": "array", "items": {"type": "object", "properties": {
                        "path": {"type": "string"}, "name": {"type": "string"}, "size": {"type": "integer"},
                        "modified": {"type": "string"}}}}}})})},
            "/admin/queue": {"get": _op("getQueue", "queue and capacity (admins)", {"200": _json("queue", {
                "type": "object", "properties": {
                    "capacity": {"$ref": "#/components/schemas/Capacity"}, "used": _OBJECT,
                    "running": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                    "queued": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                    "counts": {"type": "object", "properties": {"running": {"type": "integer"},
                                                                "queued": {"type": "integer"}}},
                    "running_per_user": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "nodes": {"type": "array", "description": "the machines jobs run on (the swarm backend's "
                              "nodes: capacity, labels, health, the jobs each runs, and `reachable`: whether the service "
                              "reaches the node's daemon); empty on one machine",
                              "items": _OBJECT},
                    "gpus": {"type": "array", "description": "the host's GPUs as NVML lists them, each with "
                             "the running jobs holding it (jobs: [] when free); empty without an NVIDIA "
                             "driver, and on a backend that does not hand GPUs out by device",
                             "items": {"type": "object", "properties": {
                                 "index": {"type": "integer"}, "uuid": {"type": "string"},
                                 "name": {"type": "string"}, "memory": {"type": "integer"},
                                 "jobs": {"type": "array", "items": {"type": "string"}}}}}}})})},
            "/admin/stats": {"get": _op("getStats", "statistics (admins)", {"200": _json("stats", {
                "type": "object", "properties": {"status_counts": _OBJECT, "recent": _OBJECT}})})},
            "/admin/usage": {"get": _op(
                "getUsage", "per user, the jobs submitted from since until until (default the last 24 h): "
                            "outcomes, run hours, cpu-hours and GiB-hours allocated and used (admins)",
                {"200": _json("usage per user", _usage_schema())},
                [_query("since", {"type": "string"}, "ISO 8601 date or date-time (UTC when it names no offset)"),
                 _query("until", {"type": "string"}, "ISO 8601 date or date-time; default now")])},
            "/admin/demand": {
                "get": _op("getDemand", "the demand model: version, calibration, load forecast, how the limits "
                                        "did, and the submissions per hour of the last 24 hours (admins)",
                           {"200": _json("the model", {"type": "object", "properties": {
                               "load_last_24h": {"type": "object", "properties": {
                                   "hours": {"type": "array", "items": {"type": "number"},
                                             "description": "start of each hour, epoch seconds"},
                                   "jobs": {"type": "array", "items": {"type": "integer"}}}},
                               "forecast_next_24h": {"type": "object", "properties": {
                                   "hours": {"type": "array", "items": {"type": "number"}},
                                   "jobs": {"type": "array", "items": {"type": "number"}},
                                   "cpu_seconds": {"type": "array", "items": {"type": "number"}},
                                   "history_hours": {"type": "integer",
                                                     "description": "hours of history it stands on (0: none)"},
                                   "history_jobs": {"type": "integer"}}}}})}),
                "post": _op("retrainDemand", "retrain the demand model now (admins)",
                            {"201": _json("the new model", _OBJECT)}, errors=("401", "403", "404"))},
            "/metrics": {"get": _op("getMetrics", "Prometheus exposition (admins)",
                                    {"200": _media("metrics", "text/plain")}, errors=("401", "403"))},
            **_schedule_paths(),
            **_sweep_paths(),
        },
    }


class OpenAPIHandler(APIHandler):
    def get(self):
        self.write_json(spec(self.api_url()))
