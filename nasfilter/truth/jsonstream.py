"""Stream the records of a large JSON file without loading the whole file.

Benchmarks such as NDS publish one JSON document per design space: a top-level array of
records, or an object whose members are such arrays (``{"top": [...], "mid": [...]}``).
:func:`iter_records` yields the records one at a time: it reads the text in chunks and
decodes each record with ``json.JSONDecoder.raw_decode`` where it starts, keeping only
the unread part of the text (plus the record being decoded) in memory. A record cut by
a chunk boundary is decoded again once more text is in (the buffer grows geometrically,
so a record costs O(its length) whatever the chunk size).

Malformed or truncated text raises :class:`JsonStreamError` with the line and character
offset of the problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, TextIO

CHUNK_CHARS = 1 << 20
#: A record longer than this (characters) is refused: the file is probably not records.
MAX_RECORD_CHARS = 256 << 20

#: An error this close to the end of the text read may be a token cut by the chunk end.
_TOKEN_SLACK = 64

_WS = re.compile(r"[ \t\n\r]*")


class JsonStreamError(ValueError):
    """Malformed or truncated JSON; ``message`` says where."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Reader:
    def __init__(self, f: TextIO, chunk: int, max_record: int) -> None:
        self.f = f
        self.chunk = chunk
        self.max_record = max_record
        self.buf = ""
        self.pos = 0  # read position in buf
        self.base = 0  # characters dropped before buf[0]
        self.lines = 0  # newlines dropped before buf[0]
        self.eof = False
        # Python's json dialect: NaN and Infinity are read (NDS loss curves hold NaN)
        self.decoder = json.JSONDecoder()

    # -- buffer ---------------------------------------------------------------------------
    def fill(self, at_least: int = 0) -> bool:
        """Read more text (at least ``at_least`` characters unless the file ends); drop the
        consumed prefix. False at the end of the file."""
        if self.eof:
            return False
        want = max(self.chunk, at_least)
        parts = []
        got = 0
        while got < want:
            s = self.f.read(want - got)
            if not s:
                self.eof = True
                break
            parts.append(s)
            got += len(s)
        if not got:
            return False  # the buffer is left as it was (error positions stay valid)
        if self.pos:
            self.lines += self.buf.count("\n", 0, self.pos)
            self.base += self.pos
            self.buf = self.buf[self.pos :]
            self.pos = 0
        self.buf += "".join(parts)
        return True

    def where(self, pos: int | None = None) -> str:
        pos = self.pos if pos is None else pos
        line = self.lines + self.buf.count("\n", 0, pos) + 1
        return f"line {line:,} (character {self.base + pos:,})"

    def error(self, what: str, pos: int | None = None) -> JsonStreamError:
        return JsonStreamError(f"{what} at {self.where(pos)}")

    def skip_ws(self) -> str:
        """Skip whitespace; the next character, or '' at the end of the file."""
        while True:
            m = _WS.match(self.buf, self.pos)
            assert m is not None
            self.pos = m.end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def value(self, what: str) -> Any:
        """Decode the JSON value starting at the read position."""
        while True:
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                # An error before the last few characters cannot be cured by more text
                # (an unterminated string always runs to the end of the text read).
                cut = e.pos >= len(self.buf) - _TOKEN_SLACK or e.msg.startswith("Unterminated")
                if cut and self.fill(at_least=len(self.buf) - self.pos):
                    self._check_size(what)
                    continue
                if e.pos >= len(self.buf) or e.msg.startswith("Unterminated"):
                    raise self.error(f"the file ends inside {what}") from None
                msg = e.msg[:-3] if e.msg.endswith(" at") else e.msg
                raise self.error(f"invalid JSON in {what}: {msg}", e.pos) from None
            # a number may go on in the next chunk: only trust a value that ends before
            # the end of the text read so far (or at the end of the file)
            if end < len(self.buf) or not self.fill(at_least=len(self.buf) - self.pos):
                self.pos = end
                return obj
            self._check_size(what)

    def _check_size(self, what: str) -> None:
        if len(self.buf) - self.pos > self.max_record:
            raise self.error(
                f"{what} is longer than {self.max_record:,} characters (or the JSON is "
                f"malformed after it)"
            )

    # -- structure ------------------------------------------------------------------------
    def array(self, member: str | None) -> Iterator[tuple[str | None, int, Any]]:
        """The elements of the array starting at the read position ('[')."""
        self.pos += 1
        c = self.skip_ws()
        if c == "]":
            self.pos += 1
            return
        index = 0
        while True:
            label = f"record {index:,}" if member is None else f"{member}[{index:,}]"
            if c == "":
                raise self.error(f"the file ends before {label}")
            yield member, index, self.value(label)
            index += 1
            c = self.skip_ws()
            if c == ",":
                self.pos += 1
                c = self.skip_ws()
            elif c == "]":
                self.pos += 1
                return
            elif c == "":
                raise self.error(f"the file ends after {label}")
            else:
                raise self.error(f"expected ',' or ']' after {label}, found {c!r}")


def iter_records(
    f: TextIO, chunk: int = CHUNK_CHARS, max_record: int = MAX_RECORD_CHARS
) -> Iterator[tuple[str | None, int, Any]]:
    """Yield ``(member, index, record)`` for every element of a top-level JSON array
    (``member`` None) or of every array-valued member of a top-level object, in file
    order. Raise JsonStreamError for anything else, malformed or truncated text."""
    r = _Reader(f, chunk, max_record)
    c = r.skip_ws()
    if c == "[":
        yield from r.array(None)
    elif c == "{":
        r.pos += 1
        c = r.skip_ws()
        if c == "}":
            r.pos += 1
        else:
            while True:
                if c != '"':
                    what = "expected a member name" if c else "the file ends inside the object"
                    raise r.error(what)
                key = r.value("a member name")
                if r.skip_ws() != ":":
                    raise r.error(f"expected ':' after member {key!r}")
                r.pos += 1
                if r.skip_ws() != "[":
                    raise r.error(f"member {key!r} is not a list of records")
                yield from r.array(key)
                c = r.skip_ws()
                if c == ",":
                    r.pos += 1
                    c = r.skip_ws()
                elif c == "}":
                    r.pos += 1
                    break
                else:
                    raise r.error(
                        f"expected ',' or '}}' after member {key!r}"
                        if c
                        else "the file ends inside the object"
                    )
    elif c == "":
        raise r.error("the file is empty")
    else:
        raise r.error(f"expected a JSON array or object, found {c!r}")
    c = r.skip_ws()
    if c:
        raise r.error(f"unexpected text after the JSON document ({c!r})")
