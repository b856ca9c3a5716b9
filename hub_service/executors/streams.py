"""A job's output on its way to the service: frames, lines and the one log cap.

Every executor reads the runner's two streams (stdout: JSON events, stderr: the log)
and hands lines to the service. What may reach the service is bounded here, once, for
every backend: at most ``Executor.log_limit`` bytes of log (then one note), at most
``event_limit`` events (the runner sends a few per cell; more can only be forged), and
no line longer than a bound, so a job that floods its output floods nothing else.
"""

from __future__ import annotations

import struct
from typing import Iterator, Optional, Tuple

#: The note that ends a log cut at its cap.
TRUNCATED = "[notebook-jobs] log truncated: the job wrote more than {limit} bytes to its log"

#: Longest line kept whole; a longer one is cut so a buffer cannot grow unbounded.
MAX_LINE = 1 << 20


def read_frames(raw) -> Iterator[Tuple[Optional[bytes], Optional[bytes]]]:
    """(stdout, stderr) chunks of Docker's multiplexed stream format, read from ``raw``.

    Each frame is an 8-byte header (stream id, three zero bytes, big-endian length)
    and its payload: Docker's documented format for a container without a tty. Ends
    quietly at the end of ``raw`` (or at a frame cut short).
    """
    while True:
        header = raw.read(8)
        if len(header) < 8:
            return
        kind, length = struct.unpack(">BxxxL", header)
        data = b""
        while len(data) < length:
            more = raw.read(length - len(data))
            if not more:
                return
            data += more
        yield (data, None) if kind == 1 else (None, data)


class LineSplitter:
    """Bytes in, whole lines out; a line longer than ``max_line`` is cut there."""

    def __init__(self, max_line: int = MAX_LINE):
        self.max_line = max_line
        self._rest = b""

    def feed(self, data: bytes) -> list:
        """The lines ``data`` completes (without their newline)."""
        *lines, rest = (self._rest + data).split(b"\n")
        if len(rest) > self.max_line:
            lines.append(rest[: self.max_line])
            rest = b""
        self._rest = rest
        return lines

    def flush(self) -> list:
        """The last line, if the stream ended without its newline."""
        rest, self._rest = self._rest, b""
        return [rest] if rest else []


class LogCap:
    """Passes log lines until ``limit`` bytes have gone by, then one note, then nothing.

    Once cut, always cut: a log with a hole in the middle would mislead.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.passed = 0
        self.dropped = 0

    def admit(self, text: str) -> Optional[str]:
        """``text`` if it may pass, the truncation note the first time it may not, else None."""
        size = len(text.encode("utf-8", "replace")) + (0 if text.endswith("\n") else 1)
        if self.dropped or self.passed >= self.limit:
            first = not self.dropped
            self.dropped += size
            return TRUNCATED.format(limit=self.limit) if first else None
        self.passed += size
        return text


class EventCap:
    """Passes runner events up to ``limit``; the ``finished`` event always passes."""

    def __init__(self, limit: int):
        self.limit = limit
        self.seen = 0

    def admit(self, event: dict) -> bool:
        """Whether ``event`` goes on to the service."""
        self.seen += 1
        return self.seen <= self.limit or event.get("event") == "finished"
