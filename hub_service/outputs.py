"""Artifacts of a job on disk: its inputs (by content hash), work directory, log and renders.

Layout under the service's data directory::

    inputs/<sha256>/input.ipynb, files/...   submitted content, stored once per hash
    jobs/<job id>/                           the work directory an executor runs in
        input.ipynb  parameters.json  files/  output.ipynb  output.html  output.md  job.log
        metrics.json                          what the notebook reported (the runner writes it, beside output.ipynb)
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Optional

import nbformat

from .executors.base import FILES_DIR, INPUT_NOTEBOOK, METRICS_FILE, OUTPUT_NOTEBOOK, PARAMETERS_FILE
from .intake import Bundle, IntakeError, safe_relpath

MEDIA_TYPES = {
    "ipynb": "application/x-ipynb+json",
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "metrics": "application/json",  # metrics.json: no render of the notebook, what the run reported
}
LOG_FILE = "job.log"


class Artifacts:
    """Paths and files of inputs and jobs under one root directory."""

    def __init__(self, root):
        self.root = Path(root)
        (self.root / "inputs").mkdir(parents=True, exist_ok=True)
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)

    def input_dir(self, sha: str) -> Path:
        return self.root / "inputs" / sha

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    def store_input(self, bundle: Bundle) -> str:
        """Keep a submission under its content hash (once), returning the hash."""
        sha = bundle.sha256
        target = self.input_dir(sha)
        for rel in bundle.files:  # intake gives normalised relative paths; never write anywhere else
            if safe_relpath(rel, "bundle file") != rel:
                raise IntakeError(f"bundle file {rel!r} is not a plain relative path")
        if not (target / INPUT_NOTEBOOK).exists():
            tmp = target.with_name(f".{sha}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            (tmp / FILES_DIR).mkdir(parents=True)
            for rel, data in bundle.files.items():
                dest = tmp / FILES_DIR / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
            (tmp / INPUT_NOTEBOOK).write_bytes(bundle.notebook_bytes)
            try:
                tmp.rename(target)  # atomic: a half-written input is never visible
            except OSError:  # another request stored the same content first
                shutil.rmtree(tmp, ignore_errors=True)
        return sha

    def read_input(self, sha: str) -> nbformat.NotebookNode:
        return nbformat.read(str(self.input_dir(sha) / INPUT_NOTEBOOK), as_version=4)

    def input_files(self, sha: str) -> dict:
        """The files stored beside an input notebook (a bundle's data files): relative path -> bytes."""
        files_dir = self.input_dir(sha) / FILES_DIR
        return {f.relative_to(files_dir).as_posix(): f.read_bytes() for f in files_dir.rglob("*")
                if f.is_file() and not f.is_symlink()}  # the service wrote them all; links it never writes

    def prepare(self, job_id: str, sha: str, parameters: dict) -> Path:
        """A fresh work directory for a run: the input, its files and the parameters."""
        workdir = self.job_dir(job_id)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.copytree(self.input_dir(sha), workdir)
        (workdir / PARAMETERS_FILE).write_text(json.dumps(parameters))
        return workdir

    def remove_job(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def output_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / OUTPUT_NOTEBOOK

    def metrics_file(self, job_id: str) -> Optional[bytes]:
        """The metrics.json the run left beside its output notebook; None if it left none."""
        try:
            return (self.job_dir(job_id) / METRICS_FILE).read_bytes()
        except FileNotFoundError:
            return None

    def log_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / LOG_FILE

    def cached_output(self, job_id: str, fmt: str) -> Optional[bytes]:
        """The output notebook, or a render of it made since it was written; None if neither."""
        source = self.output_path(job_id)
        if not source.exists():
            return None
        if fmt == "ipynb":
            return source.read_bytes()
        cached = source.with_suffix("." + fmt)
        if cached.exists() and cached.stat().st_mtime >= source.stat().st_mtime:
            return cached.read_bytes()
        return None

    def store_render(self, job_id: str, fmt: str, data: bytes) -> None:
        """Keep a render; written aside and renamed, so readers never see half of it."""
        cached = self.output_path(job_id).with_suffix("." + fmt)
        tmp = cached.with_name(f".{cached.name}.{uuid.uuid4().hex}.tmp")  # concurrent renders do not collide
        tmp.write_bytes(data)
        tmp.replace(cached)


def render(notebook_path: Path, fmt: str) -> bytes:
    """HTML (images embedded) or Markdown (images inlined as data URIs) of a notebook."""
    from nbconvert import HTMLExporter, MarkdownExporter
    from traitlets.config import Config

    nb = nbformat.read(str(notebook_path), as_version=4)
    # The kernel sends each flush of print() as its own stream output; rendered one by
    # one, every printed line became a block of its own. Merge them as Jupyter shows them.
    config = Config({"CoalesceStreamsPreprocessor": {"enabled": True}})
    if fmt == "html":
        body, _ = HTMLExporter(template_name="lab", embed_images=True, config=config).from_notebook_node(nb)
        return body.encode()
    if fmt == "md":
        body, resources = MarkdownExporter(config=config).from_notebook_node(nb)
        for name, data in (resources.get("outputs") or {}).items():
            mime = "image/svg+xml" if name.endswith(".svg") else f"image/{Path(name).suffix.lstrip('.') or 'png'}"
            uri = f"data:{mime};base64,{base64.b64encode(data).decode()}"
            body = body.replace(f"]({name})", f"]({uri})")
        return body.encode()
    raise ValueError(f"unknown format {fmt}")


class JobLog:
    """A job's append-only log file. It is not capped here: every executor passes on at
    most ``Executor.log_limit`` bytes of log (:mod:`.executors.streams`), the one cap."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")

    def write(self, text: str) -> None:
        """Append ``text`` (flushed: readers follow the file while the job runs)."""
        self._file.write(text.encode("utf-8", "replace"))
        self._file.flush()

    def close(self) -> None:
        self._file.close()
