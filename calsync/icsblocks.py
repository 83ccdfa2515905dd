"""Split .ics text into raw blocks, and splice calendar objects in and out (pure).

An .ics file is kept as a sequence of blocks whose raw texts, joined, give back the file
byte for byte: one block per top-level component of a VCALENDAR (VEVENT, VTODO, VTIMEZONE,
...; nested VALARMs stay inside their parent), one per END:VCALENDAR line, and text blocks
for everything else (calendar properties, blank lines). Nothing is re-serialised, so
components calsync does not write keep their folding, their CRLF/LF and their quirks.

RFC 5545 facts relied on: content lines end in CRLF (3.1) though LF-only files are common,
so the file's own line ending is kept and new text is converted to it; a line beginning
with a space or a tab continues the previous one (unfolding); names and BEGIN/END values
are case-insensitive; a value follows the first colon that is not inside a quoted
parameter value. Only "\\n" ends a line here: U+2028 and friends may appear in values.

Glossary: the components of one UID form one calendar object (a master and its overrides).
`IcsSyntaxError` carries a 1-based line number; callers add the path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from icalendar import Component

CALSYNC_PRODID = "-//calsync//calsync//EN"
_TZID_PARAM = re.compile(r';TZID=("[^"]*"|[^;:]*)', re.IGNORECASE)


class IcsSyntaxError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.message, self.line = message, line


@dataclass(frozen=True, slots=True)
class Line:
    """One logical content line: its physical lines as written, and its unfolded text."""

    raw: str
    text: str
    number: int

    @property
    def name(self) -> str:
        return re.split(r"[;:]", self.text, maxsplit=1)[0].strip().upper()

    @property
    def value(self) -> str:
        in_quotes = False
        for i, char in enumerate(self.text):
            if char == '"':
                in_quotes = not in_quotes
            elif char == ":" and not in_quotes:
                return self.text[i + 1:]
        return ""


@dataclass(frozen=True, slots=True)
class Block:
    """A slice of the file. `kind` is a component name, "END" (END:VCALENDAR) or "" (text)."""

    kind: str
    raw: str
    line: int
    calendar: int
    uid: str | None = None
    recurrence_id: str | None = None
    tzid: str | None = None          # a VTIMEZONE's own TZID
    tzids: frozenset[str] = frozenset()   # TZIDs the component refers to

    @property
    def is_component(self) -> bool:
        return self.kind not in ("", "END")


@dataclass(frozen=True, slots=True)
class IcsDocument:
    blocks: tuple[Block, ...]
    newline: str
    calendar_props: tuple[tuple[Line, ...], ...] = field(default=())

    @property
    def text(self) -> str:
        return "".join(b.raw for b in self.blocks)

    def objects(self) -> dict[str, list[Block]]:
        """Components by UID, in file order; components without a UID are left out."""
        result: dict[str, list[Block]] = {}
        for block in self.blocks:
            if block.is_component and block.kind != "VTIMEZONE" and block.uid is not None:
                result.setdefault(block.uid, []).append(block)
        return result

    def timezones(self, calendar: int | None = None) -> dict[str, Block]:
        result: dict[str, Block] = {}
        for block in self.blocks:
            if block.kind == "VTIMEZONE" and block.tzid and calendar in (None, block.calendar):
                result.setdefault(block.tzid, block)
        return result


def split_lines(text: str) -> list[Line]:
    """Logical lines (unfolded); blank physical lines become lines with empty text."""
    physical = text.split("\n")
    ends = [p + "\n" for p in physical[:-1]] + ([physical[-1]] if physical[-1] else [])
    lines: list[Line] = []
    for number, raw in enumerate(ends, start=1):
        content = raw.rstrip("\r\n")
        if number == 1:
            content = content.lstrip("\ufeff")
        if content[:1] in (" ", "\t") and lines and lines[-1].text:
            last = lines[-1]
            lines[-1] = Line(last.raw + raw, last.text + content[1:], last.number)
        elif content[:1] in (" ", "\t") and content.strip():
            raise IcsSyntaxError("a continuation line with nothing to continue", number)
        else:
            lines.append(Line(raw, content, number))
    return lines


def parse_document(text: str) -> IcsDocument:
    """Split a whole file; raises IcsSyntaxError on broken structure."""
    first = text.split("\n", 1)[0]
    newline = "\r\n" if first.endswith("\r") or "\n" not in text else "\n"
    scanner = _Scanner()
    for line in split_lines(text):
        scanner.feed(line)
    scanner.finish()
    return IcsDocument(tuple(scanner.blocks), newline, tuple(map(tuple, scanner.props)))


class _Scanner:
    """Depth 0: outside any VCALENDAR; 1: calendar properties; >= 2: inside a component."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.props: list[list[Line]] = []
        self.stack: list[tuple[str, int]] = []
        self.pending: list[Line] = []     # the current text or component block
        self.calendar = -1

    def feed(self, line: Line) -> None:
        if not line.text.strip():
            self.pending.append(line)
            return
        if ":" not in line.text:
            raise IcsSyntaxError(f"not a content line (NAME:value): {line.text[:40]!r}",
                                 line.number)
        name, value = line.name, line.value.strip().upper()
        if name == "BEGIN":
            self._begin(line, value)
        elif name == "END":
            self._end(line, value)
        elif not self.stack:
            raise IcsSyntaxError(f"{name} outside BEGIN:VCALENDAR ... END:VCALENDAR", line.number)
        else:
            self.pending.append(line)
            if len(self.stack) == 1:
                self.props[self.calendar].append(line)

    def _begin(self, line: Line, value: str) -> None:
        if not self.stack and value != "VCALENDAR":
            raise IcsSyntaxError(f"BEGIN:{value} outside a VCALENDAR", line.number)
        if len(self.stack) == 1:
            self._flush("")
        if value == "VCALENDAR" and not self.stack:
            self.calendar += 1
            self.props.append([])
        self.stack.append((value, line.number))
        self.pending.append(line)

    def _end(self, line: Line, value: str) -> None:
        if not self.stack or self.stack[-1][0] != value:
            opened = f"BEGIN:{self.stack[-1][0]} of line {self.stack[-1][1]}" if self.stack else (
                "nothing")
            raise IcsSyntaxError(f"END:{value} does not close {opened}", line.number)
        self.stack.pop()
        if not self.stack:
            self._flush("")
            self.pending.append(line)
            self._flush("END")
            return
        self.pending.append(line)
        if len(self.stack) == 1:
            self._flush(value)

    def _flush(self, kind: str) -> None:
        if self.pending:
            self.blocks.append(_block(kind, self.pending, max(self.calendar, 0)))
            self.pending = []

    def finish(self) -> None:
        if self.stack:
            name, number = self.stack[-1]
            raise IcsSyntaxError(f"BEGIN:{name} is never closed (END:{name} missing)", number)
        self._flush("")


def _block(kind: str, lines: Sequence[Line], calendar: int) -> Block:
    raw = "".join(line.raw for line in lines)
    if kind in ("", "END"):
        return Block(kind, raw, lines[0].number, calendar)
    own: dict[str, str] = {}
    tzids: set[str] = set()
    depth = 0
    for line in lines:
        name = line.name
        depth += (name == "BEGIN") - (name == "END")
        if depth == 1 and name in ("UID", "RECURRENCE-ID", "TZID"):
            own.setdefault(name, line.value.strip())
        match = _TZID_PARAM.search(line.text)
        if match and line.text.index(":") > match.start():
            tzids.add(match.group(1).strip('"'))
    return Block(kind, raw, lines[0].number, calendar, own.get("UID"), own.get("RECURRENCE-ID"),
                 own.get("TZID"), frozenset(tzids))


# --- building texts ---------------------------------------------------------------------


def restyle(raw: str, newline: str) -> str:
    """`raw` with every line ending turned into `newline`."""
    lf = raw.replace("\r\n", "\n")
    return lf if newline == "\n" else lf.replace("\n", newline)


def object_text(blocks: Iterable[Block]) -> str:
    return "".join(b.raw for b in blocks)


def standalone(doc: IcsDocument, uids: Iterable[str] | None = None) -> dict[str, str]:
    """Calendar objects (all, or those of `uids`) as VCALENDARs of their own.

    Each holds the file's calendar properties, the VTIMEZONEs its components use, and its
    components. Unknown UIDs are left out. One pass over the document for any number.
    """
    objects = doc.objects()
    wanted = objects if uids is None else [uid for uid in uids if uid in objects]
    zones_of: dict[int, dict[str, Block]] = {}
    result = {}
    for uid in wanted:
        components = objects[uid]
        calendar = components[0].calendar
        if calendar not in zones_of:
            zones_of[calendar] = {**doc.timezones(), **doc.timezones(calendar)}
        zones = zones_of[calendar]
        used = sorted({tz for block in components for tz in block.tzids if tz in zones})
        result[uid] = "".join([*_calendar_head(doc, calendar), *(zones[tz].raw for tz in used),
                               object_text(components), f"END:VCALENDAR{doc.newline}"])
    return result


def _calendar_head(doc: IcsDocument, calendar: int) -> list[str]:
    props = doc.calendar_props[calendar] if doc.calendar_props else ()
    names = {line.name for line in props}
    nl = doc.newline
    head = [f"BEGIN:VCALENDAR{nl}"]
    head += [f"VERSION:2.0{nl}"] * ("VERSION" not in names)
    head += [f"PRODID:{CALSYNC_PRODID}{nl}"] * ("PRODID" not in names)
    return head + [line.raw for line in props]


def new_calendar(newline: str = "\r\n") -> IcsDocument:
    """An empty VCALENDAR, as calsync writes a calendar file it creates."""
    nl = newline
    return parse_document(f"BEGIN:VCALENDAR{nl}VERSION:2.0{nl}PRODID:{CALSYNC_PRODID}{nl}"
                          f"CALSCALE:GREGORIAN{nl}END:VCALENDAR{nl}")


def splice(doc: IcsDocument, uid: str, text: str) -> str:
    """The file text with `uid`'s components replaced by those of `text` (or appended).

    Every other block keeps its raw text. A new component identical (once unfolded) to the
    old one with the same RECURRENCE-ID keeps its old raw text too. VTIMEZONEs that the new
    components use and the file lacks are taken from `text` and put before the first
    component of the calendar. Raises IcsSyntaxError when `text` is broken or holds
    another UID.
    """
    incoming = parse_document(text)
    new = [b for b in incoming.blocks if b.is_component and b.kind != "VTIMEZONE"]
    others = sorted({str(b.uid) for b in new if b.uid != uid})
    if not new or others:
        found = f"holds UID {', '.join(others)}" if others else "holds no component"
        raise IcsSyntaxError(f"{found}; expected only UID {uid}", 1)
    old = doc.objects().get(uid, [])
    calendar = old[0].calendar if old else max((b.calendar for b in doc.blocks), default=0)
    replacement = _reuse_unchanged(new, old, doc.newline)
    have = doc.timezones(calendar)
    wanted = incoming.timezones()
    zones = [restyle(wanted[tz].raw, doc.newline) for tz in sorted(
        {tz for b in new for tz in b.tzids if tz in wanted and tz not in have})]
    return "".join(_spliced(doc, old, calendar, replacement, zones))


def _reuse_unchanged(new: Sequence[Block], old: Sequence[Block], newline: str) -> list[str]:
    by_key = {(b.kind, b.recurrence_id): b for b in old}
    result = []
    for block in new:
        before = by_key.get((block.kind, block.recurrence_id))
        keep = before is not None and _same_content(before.raw, block.raw)
        result.append(before.raw if before is not None and keep else restyle(block.raw, newline))
    return result


def _same_content(old: str, new: str) -> bool:
    """Equal once unfolded, or equal as icalendar sees them (property order, "-PT10M")."""
    if [line.text for line in split_lines(old)] == [line.text for line in split_lines(new)]:
        return True
    try:
        return bool(Component.from_ical(old) == Component.from_ical(new))
    except ValueError:
        return False


def _spliced(doc: IcsDocument, old: Sequence[Block], calendar: int, replacement: list[str],
             zones: list[str]) -> Iterator[str]:
    old_ids = {id(b) for b in old}
    ends = [i for i, b in enumerate(doc.blocks) if b.kind == "END" and b.calendar == calendar]
    placed_zones = not zones
    for index, block in enumerate(doc.blocks):
        first_component = block.is_component and block.calendar == calendar
        if not placed_zones and (first_component or index == ends[-1]):
            yield from zones
            placed_zones = True
        if id(block) in old_ids:
            if block is old[0]:
                yield from replacement
            continue
        if not old and index == ends[-1]:
            yield from replacement
        yield block.raw
