"""What ``submit --wait`` shows while a job runs (the line it ends with is in ``lines``).

On a terminal: one bar, redrawn in place from the job's events (like papermill's own
progress bar). Anywhere else (a pipe, a CI log): one plain line per change, so a log
file reads top to bottom without control characters.
"""

from __future__ import annotations

import shutil
import threading
import time
from typing import Optional, TextIO

from ..states import Status
from .lines import shown


class Progress:
    """Draws a job's progress from its events on ``out``: a bar on a terminal, else lines."""

    def __init__(self, out: TextIO, tty: bool, log_output: bool = False):
        self.out, self.tty, self.log_output = out, tty, log_output
        self.began = time.monotonic()
        self.status: Optional[str] = None
        self.total: Optional[int] = None
        self.done = 0
        self.current: Optional[int] = None  # 1-based position of the running code cell
        self.phase: Optional[str] = None  # what the job waits for before its cells (progress.phase)
        self.drawn = False
        encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "")
        self.blocks = ("█", "░") if encoding == "utf8" else ("#", "-")
        # a cell may run for minutes without an event: the clock on the bar keeps ticking
        self._lock, self._stop = threading.Lock(), threading.Event()
        if tty:
            threading.Thread(target=self._tick, name="progress-clock", daemon=True).start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if self.drawn:
                    self._draw()

    def event(self, event: dict) -> None:
        """Take one server-sent event of the job."""
        with self._lock:
            self._event(event)

    def _event(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "status":
            job = event["job"]
            progress = job.get("progress") or {}
            self.total = progress.get("cells_total") or self.total
            self.done = progress.get("cells_done") or self.done
            if progress.get("phase") and progress["phase"] != self.phase:  # "building environment"
                self._line(progress["phase"])
            self.phase = progress.get("phase")
            if job["status"] != self.status:
                self.status = job["status"]
                # the summary line tells the end, and 'started' a fresh run: no line of their own
                if self.status == Status.QUEUED:
                    self._line("queued")
                elif self.status == Status.RUNNING and self.total:  # joined a run under way
                    self._line(f"running: {self.done} of {self.total} cells done")
                elif self.tty:
                    self._draw()
        elif kind == "started":
            self.total, self.done = event.get("cells_total"), 0
            self._line(f"running: {self.total} code cells")
        elif kind == "cell_started":
            self.current = self.done + 1
            self._line(f"cell {self.current} of {self.total or '?'} started")
        elif kind == "cell_finished":
            self.done = event.get("cells_done", self.done + 1)
            failed = event.get("status") == "error"
            self._line(f"cell {self.done} of {self.total or '?'} {'failed' if failed else 'done'}")
            self.current = None
        elif kind == "log" and self.log_output:
            self._text(event.get("text", ""))

    def note(self, text: str) -> None:
        """A line about the waiting itself (e.g. the service restarting), kept apart from the bar."""
        with self._lock:
            self._text(text)

    def close(self) -> None:
        """Stop the clock and leave the terminal's cursor on a fresh line."""
        self._stop.set()
        with self._lock:
            if self.tty and self.drawn:
                self.out.write("\n")
                self.out.flush()
                self.drawn = False

    def _line(self, text: str) -> None:
        if self.tty:
            self._draw()
        else:
            self.out.write(text + "\n")
            self.out.flush()

    def _text(self, text: str) -> None:
        """The notebook's printed output, above the bar (on a terminal, as ``logs`` shows it there)."""
        if self.tty:
            text = shown(text, one_line=False, colours=True)
        if self.tty and self.drawn:
            self.out.write("\r\x1b[K")
        self.out.write(text if text.endswith("\n") else text + "\n")
        if self.tty:
            self._draw()
        else:
            self.out.flush()

    def _draw(self) -> None:
        width = shutil.get_terminal_size((80, 24)).columns
        done, total = self.done, self.total
        minutes, seconds = divmod(int(time.monotonic() - self.began), 60)
        tail = f" {done}/{total or '?'} cells  {minutes}:{seconds:02d}"
        if self.current and self.status == "running":
            tail += f"  running cell {self.current}"
        head = f"{self.status or 'submitted':<9} "
        room = max(10, min(40, width - len(head) - len(tail) - 1))
        filled = int(room * done / total) if total else 0
        bar = self.blocks[0] * filled + self.blocks[1] * (room - filled)
        self.out.write(("\r\x1b[K" + head + bar + tail)[: width + 4])  # +4: the escape takes no columns
        self.out.flush()
        self.drawn = True
