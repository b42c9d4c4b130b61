"""The AMI wire format: a banner line, then ``Key: Value\\r\\n`` blocks separated by a blank line.

A message becomes a dict of header → value in wire order; a repeated header (``ChanVariable``)
becomes a list, exactly like the fixtures' JSONL and panoramisk's ``Message.from_line``. A bad frame
(a line that is no header, an oversized frame) is logged on one line and skipped: the stream goes on.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

Message = dict[str, "str | list[str]"]

BANNER_PREFIX = "Asterisk Call Manager/"
MAX_FRAME = 256 * 1024  # bytes; a frame larger than this without its terminator is garbage


class AmiParser:
    """Incremental parser: ``feed(bytes)`` returns the complete messages received so far."""

    def __init__(self) -> None:
        self._buffer = b""
        self.banner: str | None = None
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[Message]:
        buffer = self._buffer + data
        messages: list[Message] = []
        start = 0
        if self.banner is None and buffer:
            end = buffer.find(b"\r\n")
            if end == -1:
                self._buffer = buffer
                return messages
            first = buffer[:end].decode("utf-8", "replace")
            if first.startswith(BANNER_PREFIX):
                self.banner = first
                start = end + 2
            else:
                self.banner = ""  # no banner: a stream joined mid-way, parse it anyway
        end = buffer.rfind(b"\r\n\r\n", start)
        if end != -1:
            # a frame ends at an ASCII CRLF, so no UTF-8 sequence is cut: decode once per read
            text = buffer[start:end].decode("utf-8", "replace")
            parse = self._parse_frame
            for frame in text.split("\r\n\r\n"):
                message = parse(frame)
                if message is not None:
                    messages.append(message)
            start = end + 4
        rest = buffer[start:]
        if len(rest) > MAX_FRAME:
            self._bad(rest[:80], "oversized frame without terminator")
            rest = b""
        self._buffer = rest
        return messages

    def _bad(self, frame: bytes, why: str) -> None:
        self.bad_frames += 1
        log.warning("AMI: skipped a bad frame (%s): %r", why, frame[:80])

    def _parse_frame(self, frame: str) -> Message | None:
        frame = frame.strip("\r\n")
        if not frame:
            return None
        message: Message = {}
        for line in frame.split("\r\n"):
            key, sep, value = line.partition(": ")
            if not sep:
                key, sep, value = line.partition(":")
                if not sep:
                    self._bad(frame.encode("utf-8", "replace"), "not a header line")
                    return None
            if not key or key[0] == " " or key[-1] == " ":
                self._bad(frame.encode("utf-8", "replace"), "not a header line")
                return None
            previous = message.get(key)
            if previous is None:
                message[key] = value
            elif isinstance(previous, list):
                previous.append(value)
            else:
                message[key] = [previous, value]
        return message


def parse_bytes(data: bytes) -> tuple[str | None, list[Message]]:
    """The banner and every message of a whole capture."""
    parser = AmiParser()
    messages = parser.feed(data)
    return parser.banner, messages


def read_capture(path: str | Path) -> list[Message]:
    """Every message of a ``.ami`` capture (``.ami.gz`` too)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    return parse_bytes(data)[1]


def iter_jsonl(path: str | Path) -> Iterator[dict]:
    """The messages of a fixture's ``.jsonl`` (``.jsonl.gz`` too), banner line skipped."""
    import json

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            message = json.loads(line)
            if "_banner" in message:
                continue
            yield message
