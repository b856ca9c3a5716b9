"""``GET /openapi.json``: the REST contract, machine-readable."""

from __future__ import annotations

from .. import __version__
from .base import APIHandler

_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
_ERR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_JOB = {"description": "the job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}


def _op(summary, responses, params=(), body=None):
    op = {"summary": summary, "parameters": list(params),
          "responses": dict(responses, **{"400": _ERR, "401": _ERR, "403": _ERR, "404": _ERR})}
    if body:
        op["requestBody"] = body
    return op


def spec(server_url: str) -> dict:
    """The OpenAPI 3 document of the service."""
    submit_fields = {
        "parameters": {"type": "string", "description": "JSON object of notebook parameters"},
        "name": {"type": "string"},
        "resources": {"type": "string", "description": 'JSON: {"cpu": 1.5, "memory": "2GB", "gpu": 0}'},
        "timeout": {"type": "number", "description": "seconds"},
        "callback_url": {"type": "string", "format": "uri"},
        "output_formats": {"type": "string", "description": "comma-separated: ipynb,html,md"},
        "entry": {"type": "string", "description": "file to run inside a .zip bundle"},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Notebook Jobs", "version": __version__,
                 "description": "Run notebooks as parameterized, sandboxed jobs on JupyterHub."},
        "servers": [{"url": server_url}],
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "Authorization",
                                          "description": "token <JupyterHub API token>"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}}}}},
                "Job": {"type": "object", "properties": {
                    "id": {"type": "string", "nullable": True}, "user": {"type": "string"}, "name": {"type": "string"},
                    "dry_run": {"type": "boolean", "description": "present (true) only on a dry run's answer"},
                    "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
                    "progress": {"type": "object", "properties": {"cells_done": {"type": "integer"},
                                                                  "cells_total": {"type": "integer", "nullable": True}}},
                    "resources": {"type": "object"}, "parameters": {"type": "object"},
                    "error": {"type": "object", "nullable": True, "properties": {
                        "reason": {"type": "string", "enum": ["cell_error", "oom_killed", "timeout", "cancelled",
                                                              "invalid_input", "infrastructure"]},
                        "message": {"type": "string"}, "cell": {"type": "integer", "nullable": True}}},
                    "created": {"type": "string", "format": "date-time"},
                    "started": {"type": "string", "format": "date-time", "nullable": True},
                    "finished": {"type": "string", "format": "date-time", "nullable": True},
                }},
            },
        },
        "security": [{"token": []}],
        "paths": {
            "/": {"get": _op("version, backend and capacity", {"200": {"description": "service info"}})},
            "/health": {"get": dict(_op("health (no auth)", {"200": {"description": "ok"}}), security=[])},
            "/jobs": {
                "get": _op("list own jobs (admins: user=, all=1)", {"200": {"description": "a page of jobs"}}, [
                    {"name": n, "in": "query", "schema": {"type": "string"}}
                    for n in ("status", "q", "limit", "cursor", "sort", "user", "all")]),
                "post": _op("submit a notebook (dry_run=1: validate and size only; 200 + the would-be job, "
                            "id null, nothing stored)", {"201": _JOB, "200": _JOB, "413": _ERR, "422": _ERR},
                            [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}},
                             {"name": "dry_run", "in": "query", "schema": {"type": "string", "enum": ["0", "1"]}}],
                            {"content": {
                                "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                                                   "properties": dict(submit_fields, file={
                                                                       "type": "string", "format": "binary"})}},
                                "application/json": {"schema": {"type": "object", "properties": dict(
                                    submit_fields, notebook={"type": "object"}, path={"type": "string"},
                                    code={"type": "string"}, parameters={"type": "object"},
                                    resources={"type": "object"})}}}}),
            },
            "/jobs/{job_id}": {"get": _op("one job", {"200": _JOB}, [_JOB_ID]),
                               "delete": _op("delete an ended job (cancels first)", {"204": {"description": "gone"}},
                                             [_JOB_ID])},
            "/jobs/{job_id}/cancel": {"post": _op("cancel", {"200": _JOB, "202": _JOB, "409": _ERR}, [_JOB_ID])},
            "/jobs/{job_id}/rerun": {"post": _op("run again", {"201": _JOB}, [_JOB_ID])},
            "/jobs/{job_id}/output": {"get": _op("output notebook or render", {"200": {"description": "output"}}, [
                _JOB_ID, {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["ipynb", "html", "md"]}}])},
            "/jobs/{job_id}/input": {"get": _op("submitted notebook", {"200": {"description": "ipynb"}}, [_JOB_ID])},
            "/jobs/{job_id}/logs": {"get": _op("log (follow=1 streams)", {"200": {"description": "text"}}, [
                _JOB_ID, {"name": "follow", "in": "query", "schema": {"type": "string"}}])},
            "/jobs/{job_id}/events": {"get": _op("server-sent events", {"200": {"description": "text/event-stream"}},
                                                 [_JOB_ID])},
            "/notebooks": {"get": _op("notebooks in your workspace", {"200": {"description": "list"}})},
            "/admin/queue": {"get": _op("queue and capacity (admins)", {"200": {"description": "queue"}})},
            "/admin/stats": {"get": _op("statistics (admins)", {"200": {"description": "stats"}})},
        },
    }


class OpenAPIHandler(APIHandler):
    def get(self):
        self.write_json(spec(self.api_url()))
