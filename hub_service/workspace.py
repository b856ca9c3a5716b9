"""A user's workspace: reading a notebook from it (``{"path": …}`` submits, path schedules) and listing them.

A path-based schedule reads its file again at every run (the latest saved version runs),
so the reading lives here, outside the handlers, for the API and the scheduler alike.

The service may be able to read much more than the user (in the demo it runs as root),
and the user owns everything below their workspace, so a name there may change between
any two system calls. Nothing here therefore checks a path and then opens it again by
name: the workspace root is opened once, and every name below it is opened relative to
the directory opened before it, with ``O_NOFOLLOW``, so that what is checked (with
``fstat``) and read is the very file that was opened.

* The workspace root (``NotebookJobs.workspace_root``) is the admin's configured path:
  links in it are followed once, as the admin set them (``/home/alice`` may be a link);
  so no user may own a directory above their own workspace root.
* Below the root, symbolic links are **not followed at all** -- neither a linked
  directory on the way nor a linked file at its end -- whether they point inside the
  workspace or out of it. The refusal names the link.
* Only regular files are read (a FIFO is opened non-blocking and refused, never read),
  at most ``max_size`` bytes of them, however the file grows meanwhile.
* A file with more than one hard link whose owner is not the workspace's owner is
  refused too: a hard link is not a symbolic link, but it can make another user's file
  (where the kernel allows linking it at all) look like one of the workspace's own.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from .intake import Bundle, IntakeError, Limits, clean_name, read_submission, safe_relpath

#: what GET /notebooks lists (a submit by path also takes a .zip bundle)
NOTEBOOK_SUFFIXES = (".ipynb", ".py")

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC
#: a directory below the root: never through a link
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
#: the file itself: never through a link, and without blocking on a FIFO (or a terminal)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | _CLOEXEC
#: what open(O_NOFOLLOW) answers for a link: ELOOP on Linux, EMLINK on FreeBSD, EFTYPE elsewhere
_LINK_ERRNOS = {errno.ELOOP, errno.EMLINK} | ({errno.EFTYPE} if hasattr(errno, "EFTYPE") else set())

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISLNK, "a symbolic link"))


class WorkspaceFileMissing(IntakeError):
    """The path names no file in the user's workspace (any more)."""

    def __init__(self, rel: str, user: str):
        super().__init__(f"no file {rel} in {user}'s workspace", 404, "not_found")
        self.rel = rel


def _link_refused(shown: str) -> IntakeError:
    return IntakeError(f"{shown} is a symbolic link; the service does not follow links "
                       "(submit the file it points to by its own path, or copy it into your workspace)")


def _check_user(user: str) -> None:
    # the Hub refuses such names already; the workspace root is a path made from the name
    if not isinstance(user, str) or not user or "/" in user or "\x00" in user or set(user) == {"."}:
        raise IntakeError(f"user name {user!r} cannot name a workspace")


def open_workspace(root: str) -> int:
    """A descriptor of the workspace root directory; links in the admin's path are followed, once.

    Raises OSError (ENOENT when there is no workspace, ENOTDIR when it is not a directory).
    """
    return os.open(root, _ROOT_FLAGS)


def _open_beneath(root_fd: int, rel: str, user: str) -> int:
    """Open ``rel`` (a :func:`safe_relpath`) below ``root_fd`` one component at a time, following no link."""
    parts = rel.split("/")
    fd = root_fd
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                child = os.open(part, _FILE_FLAGS if last else _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                shown = "/".join(parts[:i + 1])
                # O_DIRECTORY|O_NOFOLLOW on a link answers ENOTDIR on Linux: look (for the message only:
                # nothing was opened) whether the name is a link or something else that is no directory
                if e.errno in _LINK_ERRNOS or (e.errno == errno.ENOTDIR and _is_link(part, fd)):
                    raise _link_refused(shown) from None
                if e.errno in (errno.ENOENT, errno.ENOTDIR):
                    raise WorkspaceFileMissing(rel, user) from None
                if e.errno == errno.ENXIO:  # a socket: it cannot be opened at all
                    raise IntakeError(f"{shown} is not a regular file") from None
                raise IntakeError(f"path {rel!r} cannot be read: {e.strerror or e}") from None
            if fd != root_fd:
                os.close(fd)
            fd = child
        return fd
    except BaseException:
        if fd != root_fd:
            os.close(fd)
        raise


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _read_at_most(fd: int, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes from ``fd``: one byte past the limit is enough to know it is passed."""
    chunks, got = [], 0
    while got <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _describe(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def _foreign_hard_link(st: os.stat_result, root_st: os.stat_result) -> bool:
    return st.st_nlink > 1 and st.st_uid != root_st.st_uid


def read_workspace_bytes(root: str, user: str, path, *, max_size: int) -> tuple:
    """``(rel, data)``: the bytes of the regular file at ``path`` below ``root``, from the one descriptor opened.

    Raises :class:`WorkspaceFileMissing` when it is not there, :class:`IntakeError` when the
    path is not a plain relative one, goes through or ends in a symbolic link, is not a
    regular file, is over ``max_size`` bytes (413) or cannot be read.
    """
    rel = safe_relpath(path, "path")
    _check_user(user)
    try:
        root_fd = open_workspace(root)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise WorkspaceFileMissing(rel, user) from None
        raise IntakeError(f"path {rel!r} cannot be read: your workspace cannot be opened "
                          f"({e.strerror or e})") from None
    try:
        fd = _open_beneath(root_fd, rel, user)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                if stat.S_ISDIR(st.st_mode):  # as before: a directory is no file of that name
                    raise WorkspaceFileMissing(rel, user)
                raise IntakeError(f"{rel} is {_describe(st.st_mode)}, not a regular file")
            if _foreign_hard_link(st, os.fstat(root_fd)):
                raise IntakeError(f"{rel} is a hard link to a file owned by another user (uid {st.st_uid}); "
                                  "the service does not follow links")
            if st.st_size > max_size:
                raise IntakeError(f"{rel} is {st.st_size} bytes, over the limit of {max_size}",
                                  413, "too_large")
            data = _read_at_most(fd, max_size)
        except OSError as e:
            raise IntakeError(f"path {rel!r} cannot be read: {e.strerror or e}") from None
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)
    if len(data) > max_size:  # it grew after fstat
        raise IntakeError(f"{rel} is over the limit of {max_size} bytes", 413, "too_large")
    return rel, data


def read_workspace_notebook(root: str, user: str, path, *, max_size: int, max_members: int = 1000,
                            max_bytes: int = 100 << 20) -> Bundle:
    """The notebook at ``path`` under ``root`` (the user's workspace) as a Bundle named by its path.

    Raises :class:`WorkspaceFileMissing` when it is not there, :class:`IntakeError` when it
    is not a plain relative path, is or goes through a symbolic link, is not a regular
    file, is too big, cannot be read or is no notebook (see :func:`read_workspace_bytes`).
    """
    rel, data = read_workspace_bytes(root, user, path, max_size=max_size)
    bundle = read_submission(rel.rsplit("/", 1)[-1], data, max_members=max_members, max_bytes=max_bytes)
    bundle.name = clean_name(rel)  # a file in a workspace may be named anything, a line feed too
    return bundle


def _listable_name(name: str) -> bool:
    """Whether a submit could name this entry: no hidden names, nothing ``safe_relpath`` would change."""
    if name.startswith(".") or "\\" in name:
        return False
    try:
        name.encode("utf-8")  # a name that is not UTF-8 decodes to lone surrogates: no JSON can carry it
    except UnicodeEncodeError:
        return False
    return True


def list_notebooks(root: str, *, limit: int = 1000, max_entries: int = 100_000, max_depth: int = 32) -> list:
    """Notebooks and scripts in the workspace at ``root``, newest first: what a submit by path would accept.

    Regular files named ``*.ipynb`` / ``*.py`` only: no symbolic links (and no directory
    reached through one), no hidden files or directories, no ``__pycache__``. The walk
    opens each directory relative to its parent with ``O_NOFOLLOW`` and looks at entries
    with ``lstat``, so a link is never followed, even one swapped in meanwhile. It stops
    after ``limit`` notebooks or ``max_entries`` entries looked at, and goes at most
    ``max_depth`` directories deep. A missing or unreadable workspace lists nothing.
    Blocking file-system work: run it in a thread.
    """
    try:
        root_fd = open_workspace(root)
    except OSError:
        return []
    try:
        root_st = os.fstat(root_fd)
        found = []
        seen = 0
        stack = []  # (prefix, fd, scandir iterator): one open directory per level

        def push(prefix: str, fd: int) -> None:
            try:
                stack.append((prefix, fd, os.scandir(fd)))  # scandir works on its own copy of fd
            except OSError:
                os.close(fd)

        push("", os.dup(root_fd))
        try:
            while stack and len(found) < limit and seen < max_entries:
                prefix, fd, entries = stack[-1]
                try:
                    entry = next(entries, None)
                except OSError:  # the directory went away or became unreadable
                    entry = None
                if entry is None:
                    entries.close()
                    os.close(fd)
                    stack.pop()
                    continue
                seen += 1
                name = entry.name
                if not _listable_name(name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if name == "__pycache__" or len(stack) >= max_depth:
                        continue
                    try:
                        sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    except OSError:  # swapped for a link, gone, or not ours to read
                        continue
                    push(prefix + name + "/", sub)
                elif (stat.S_ISREG(st.st_mode) and name.endswith(NOTEBOOK_SUFFIXES)
                      and not _foreign_hard_link(st, root_st)):
                    found.append({"path": prefix + name, "name": name, "size": st.st_size,
                                  "mtime": st.st_mtime})
        finally:
            for _prefix, fd, entries in stack:
                entries.close()
                os.close(fd)
    finally:
        os.close(root_fd)
    found.sort(key=lambda n: n["mtime"], reverse=True)
    for n in found:
        n["modified"] = _iso(n.pop("mtime"))
    return found


def _iso(mtime: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))


class Workspaces:
    """Every user's workspace, where the admin put them (``NotebookJobs.workspace_root``): the one way the
    service reads a notebook from one (a ``{"path": …}`` submission, a path schedule's run) and lists them.

    Blocking file-system work: call it in a thread.
    """

    def __init__(self, root: str, limits: Limits):
        self.template, self.limits = root, limits

    def root(self, user: str) -> str:
        """The user's workspace directory (``{username}`` replaced)."""
        return self.template.format(username=user)

    def read(self, user: str, path) -> Bundle:
        """The notebook at ``path`` in the user's workspace, as a submission reads it (see
        :func:`read_workspace_notebook`), within the admin's limits."""
        limits = self.limits
        return read_workspace_notebook(self.root(user), user, path, max_size=limits.max_upload_size,
                                       max_members=limits.bundle_max_files, max_bytes=limits.bundle_max_bytes)

    def notebooks(self, user: str) -> list:
        """What a submission by path would accept, newest first (see :func:`list_notebooks`)."""
        return list_notebooks(self.root(user))
