"""Reading a notebook from a user's workspace: for ``{"path": …}`` submissions and path-based schedules.

A path-based schedule reads its file again at every run (the latest saved version runs),
so the reading lives here, outside the handlers, for the API and the scheduler alike.
"""

from __future__ import annotations

from pathlib import Path

from .intake import Bundle, IntakeError, read_submission, safe_relpath


class WorkspaceFileMissing(IntakeError):
    """The path names no file in the user's workspace (any more)."""

    def __init__(self, rel: str, user: str):
        super().__init__(f"no file {rel} in {user}'s workspace", 404, "not_found")
        self.rel = rel


def read_workspace_notebook(root: str, user: str, path, *, max_size: int, max_members: int = 1000,
                            max_bytes: int = 100 << 20) -> Bundle:
    """The notebook at ``path`` under ``root`` (the user's workspace) as a Bundle named by its path.

    Raises :class:`WorkspaceFileMissing` when it is not there, :class:`IntakeError` when it
    lies outside the workspace, is too big, cannot be read or is no notebook.
    """
    rel = safe_relpath(path, "path")
    base = Path(root).resolve()
    try:
        target = (base / rel).resolve()
        if base not in target.parents:
            raise IntakeError(f"path {rel!r} is outside your workspace")
        if not target.is_file():
            raise WorkspaceFileMissing(rel, user)
        size = target.stat().st_size
        if size > max_size:
            raise IntakeError(f"{rel} is {size} bytes, over the limit of {max_size}", 413)
        data = target.read_bytes()
    except (OSError, RuntimeError) as e:  # a name too long, a symlink loop, a file the service may not read
        raise IntakeError(f"path {rel!r} cannot be read: {getattr(e, 'strerror', None) or e}") from None
    bundle = read_submission(target.name, data, max_members=max_members, max_bytes=max_bytes)
    bundle.name = rel
    return bundle
