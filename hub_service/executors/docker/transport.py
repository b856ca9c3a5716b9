"""Files in and out of a job's container, as tar archives: nothing of the host is mounted.

The job's inputs go in with ``put_archive`` (owned by the job's user, as the runner
needs to write beside them); its results come out with ``get_archive``. A warm runner is
handed small inputs in its job line instead and sends small results back as one event
(:mod:`.warm`; :func:`sent_outputs` reads them as strictly as an archive). Everything in
that archive was written by untrusted code, so it is not handed to tarfile's extraction
(whose ``data`` filter had bypasses until Python 3.11.13 and 3.12.11): only regular files
and directories with plain relative names are unpacked, each file written by this code
through a descriptor opened without following links. Links, devices and FIFOs the job
made stay behind.
"""

from __future__ import annotations

import binascii
import os
import shutil
import tarfile
import tempfile
from base64 import b64decode
from pathlib import Path

from ..base import FILES_DIR, INPUT_NOTEBOOK, METRICS_FILE, OUTPUT_NOTEBOOK, PARAMETERS_FILE, JobSpec

#: The work directory's files that go in beside files/ (when there), and those that come out beside it.
INPUT_FILES = (INPUT_NOTEBOOK, PARAMETERS_FILE)
OUTPUT_FILES = (OUTPUT_NOTEBOOK, METRICS_FILE)


def inputs_tar(spec: JobSpec, uid: int, gid: int):
    """The job's inputs as a tar (a temporary file, at its start), owned by ``uid:gid``."""
    buf = tempfile.TemporaryFile()

    def owned(info: tarfile.TarInfo):
        info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
        info.mode |= 0o700 if info.isdir() else 0o600
        return info

    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in INPUT_FILES:
            path = spec.workdir / name
            if path.exists():
                tar.add(path, arcname=name, filter=owned)
        files = spec.files_dir
        if files.is_dir():
            tar.add(files, arcname=FILES_DIR, filter=owned)
        else:
            info = tarfile.TarInfo(FILES_DIR)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(owned(info))
    buf.seek(0)
    return buf


def extract_outputs(chunks, workdir: str, target: Path) -> None:
    """Unpack output.ipynb, metrics.json and files/ from ``get_archive``'s chunks of ``workdir`` into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as buf:
        for chunk in chunks:
            buf.write(chunk)
        buf.seek(0)
        with tarfile.open(fileobj=buf, mode="r|") as tar:
            top = Path(workdir).name
            for member in tar:
                parts = member.name.split("/", 1)
                if parts[0] != top or len(parts) == 1:
                    continue
                rel = parts[1]
                if rel not in (*OUTPUT_FILES, FILES_DIR) and not rel.startswith(FILES_DIR + "/"):
                    continue
                _unpack(tar, member, rel, target)


def sent_outputs(event: dict) -> list:
    """The files of a warm runner's "outputs" event (runner.py's), as (relative path, bytes): its
    ``outputs`` (output.ipynb, metrics.json) and its ``files`` (files/, by plain name). ValueError: any
    other name, or content that is not base64 (then the job's archive is read instead)."""
    out = []
    for key, names in (("outputs", OUTPUT_FILES), ("files", None)):
        files = event.get(key) or {}
        if not isinstance(files, dict):
            raise ValueError(f"{key} is not an object of file names")
        for name, content in files.items():
            plain = name not in ("", ".", "..") and "/" not in name and "\0" not in name
            if not isinstance(content, str) or (name not in names if names else not plain):
                raise ValueError(f"{key}: {name[:100]!r} is not a name of the job's outputs")
            try:
                out.append((name if names else f"{FILES_DIR}/{name}", b64decode(content, validate=True)))
            except binascii.Error as e:
                raise ValueError(f"{key}: {name!r} is not base64 ({e})") from None
    return out


def write_outputs(files: list, target: Path) -> None:
    """Write ``sent_outputs``' files below ``target``, as an archive's are unpacked."""
    for rel, data in files:
        with _created(target.joinpath(*rel.split("/"))) as out:
            out.write(data)


def _unpack(tar: tarfile.TarFile, member: tarfile.TarInfo, rel: str, target: Path) -> None:
    """Write one member of the job's archive below ``target``: a directory or a regular file, nothing else."""
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts) or not (member.isfile() or member.isdir()):
        return  # a link, device or FIFO, or a name that would leave target: not ours to make
    dest = target.joinpath(*parts)
    if member.isdir():
        dest.mkdir(mode=0o755, parents=True, exist_ok=True)
        return
    with _created(dest) as out, tar.extractfile(member) as data:
        shutil.copyfileobj(data, out)


def _created(dest: Path):
    """``dest`` (below the job's work directory here), opened for writing: never through a link."""
    dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    # (every directory on the way was made here or by the service: none is a link)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
    return os.fdopen(fd, "wb")
