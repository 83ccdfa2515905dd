"""The DESCRIPTION of a session event, as text (pure).

A DESCRIPTION carries two things calsync reads or writes:

* the plan block a person writes by hand (or a template renders): `Project:`, `Session
  Type:`, `Framework:`, `Primary Model:` and `Cost Budget:` lines, then the `TOKEN BUDGET:`,
  `GOALS:`, `SUCCESS CRITERIA:`, `DELIVERABLES:` and `NOTES:` sections
  (`parse_plan_block`, `render_plan_block`);
* the actuals block calsync owns, from `--- calsync actuals ---` to
  `--- end calsync actuals ---` (`render_actuals_block`, `replace_actuals_block`).

Google Calendar turns a DESCRIPTION edited on its web page into HTML, and Outlook adds an
HTML copy in X-ALT-DESC: `html_to_text` turns either back into the plain layout.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as _field
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser
from typing import Any

from .model import Actuals, Budget, Family, Goal, SessionPlan
from .properties import format_usd, parse_number, parse_usd, unflatten

ACTUALS_START = "--- calsync actuals ---"
ACTUALS_END = "--- end calsync actuals ---"

# ---------------------------------------------------------------------------------- HTML

_HTML_TAG = re.compile(
    r"</?(?:br|p|div|span|b|i|u|em|strong|ul|ol|li|a|font|html|body|html-blob|h[1-6]|"
    r"table|tr|td|pre|blockquote)\b[^<>]*>",
    re.IGNORECASE,
)
_BLOCK_TAGS = frozenset({
    "p", "div", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
    "blockquote", "pre", "section", "article", "header", "footer", "dl", "dt", "dd",
})
_SKIP_TAGS = frozenset({"head", "title", "style", "script"})


_PLAIN_BREAK = re.compile(r"[^>\s][ \t]*\r?\n|\n\s*[^<\s]")


def looks_like_html(text: str) -> bool:
    """True when `text` is HTML (Google's web editor, Outlook's X-ALT-DESC).

    A document (`<html>`, `<!DOCTYPE`) is HTML. Otherwise it takes a known tag and no line
    break next to text: plain text that mentions `<b>` breaks its lines with newlines,
    HTML with tags (a newline in HTML source sits between two tags).
    """
    text = text.strip()
    if text[:9].lower().startswith(("<!doctype", "<html")):
        return True
    return _HTML_TAG.search(text) is not None and _PLAIN_BREAK.search(text) is None


class _TextExtractor(HTMLParser):
    """The text a browser would show, one line per `<br>`, paragraph, div or list item."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.pre = 0
        self.lists: list[int | None] = []  # per open list: next number (ol) or None (ul)

    def _at_line_start(self) -> bool:
        return not self.out or self.out[-1].endswith("\n")

    def _break(self) -> None:
        if not self._at_line_start():
            self.out.append("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag in ("ul", "ol"):
            self._break()
            self.lists.append(1 if tag == "ol" else None)
        elif tag == "li":
            self._break()
            number = self.lists[-1] if self.lists else None
            if number is None:
                self.out.append("- ")
            else:
                self.out.append(f"{number}. ")
                self.lists[-1] = number + 1
        elif tag in _BLOCK_TAGS:
            self._break()
            if tag == "pre":
                self.pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self._break()
        elif tag in _BLOCK_TAGS:
            self._break()
            if tag == "pre" and self.pre:
                self.pre -= 1

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if not self.pre:
            data = re.sub(r"[ \t\r\n\f]+", " ", data)
            if self._at_line_start():
                data = data.lstrip(" ")
        if data:
            self.out.append(data)


def html_to_text(markup: str) -> str:
    """The plain-text layout of an HTML DESCRIPTION: `<br>`, `<p>`, `<div>` and list items
    become lines (`- ` or `1. ` for items), entities become characters, `&nbsp;` a space."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.out).replace("\xa0", " ")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def _to_html(text: str) -> str:
    return "<br>".join(html.escape(line, quote=False) for line in text.split("\n"))


# ------------------------------------------------------------------------ actuals block

_SP = r"(?:[ \t\xa0]|&nbsp;|&#160;|&#xa0;)"
_START = re.compile(
    rf"(?:^|(?<=>)){_SP}*---{_SP}+calsync{_SP}+actuals{_SP}+---{_SP}*(?=\r?$|<)",
    re.IGNORECASE | re.MULTILINE,
)
_END = re.compile(
    rf"(?:^|(?<=>)){_SP}*---{_SP}+end{_SP}+calsync{_SP}+actuals{_SP}+---{_SP}*(?=\r?$|<)",
    re.IGNORECASE | re.MULTILINE,
)


def find_actuals_blocks(text: str) -> list[tuple[int, int]]:
    """Character spans of every actuals block, markers included (plain text or HTML).

    A block whose end marker was deleted runs to the end of the text.
    """
    spans = []
    position = 0
    while start := _START.search(text, position):
        end = _END.search(text, start.end())
        stop = end.end() if end else len(text)
        spans.append((start.start(), stop))
        position = stop
    return spans


def replace_actuals_block(
    description: str, block: str | None, *, is_html: bool | None = None,
) -> str:
    """`description` with its actuals block replaced by `block` (None: removed).

    A block that a client turned into HTML or CRLF is found too; the new block takes the
    description's form (HTML-safe text with `<br>`, or CRLF line ends). Without a block,
    `block` is appended after one blank line (in HTML: before `</body>` when there is one).
    Text outside the block stays byte-identical; a second block, if any, is removed.
    `is_html` says whether `description` is HTML (default: `looks_like_html`).
    """
    if is_html is None:
        is_html = looks_like_html(description)
    nl = "\r\n" if "\r\n" in description else "\n"
    if block is not None:
        block = block.replace("\r\n", "\n")
        block = _to_html(block) if is_html else block.replace("\n", nl)
    spans = find_actuals_blocks(description)
    if not spans:
        return description if block is None else _append(description, block, is_html, nl)
    parts: list[str] = []
    position = 0
    for index, (start, stop) in enumerate(spans):
        before = description[position:start]
        if block is None or index > 0:
            before, stop = _drop_separator(description, before, stop, is_html)
            parts.append(before)
        else:
            parts += [before, block]
        position = stop
    parts.append(description[position:])
    return "".join(parts)


def _append(description: str, block: str, is_html: bool, nl: str) -> str:
    if is_html:
        body = re.search(r"</(?:body|html-blob)>", description, re.IGNORECASE)
        at = body.start() if body else len(description)
        separator = "<br><br>" if description[:at].strip() else ""
        return description[:at] + separator + block + description[at:]
    if not description or description.endswith(nl * 2):
        separator = ""
    else:
        separator = nl if description.endswith(nl) else nl * 2
    return description + separator + block


def _drop_separator(text: str, before: str, stop: int, is_html: bool) -> tuple[str, int]:
    """When a block is removed, also remove the blank line that separated it."""
    if is_html:
        return re.sub(r"(?:<br\s*/?>){1,2}$", "", before, flags=re.IGNORECASE), stop
    rest = text[stop:]
    if not rest.strip():
        return before.rstrip("\r\n"), len(text)
    following = re.match(r"(?:\r?\n){1,2}", rest)
    return before, stop + (following.end() if following else 0)


def _tokens(count: int) -> str:
    """12.3k, 850, 1.2M."""
    if count < 1_000:
        return str(count)
    if count < 999_950:
        return f"{count / 1_000:.1f}k"
    return f"{count / 1_000_000:.1f}M"


def _compact(count: int) -> str:
    """100k, 12.5k, 2M: a budget, without a needless decimal."""
    return _tokens(count).replace(".0k", "k").replace(".0M", "M")


def _percent(used: int, budget: int) -> int:
    """Rounded half up, as people do: 74.5% → 75%."""
    return (200 * used + budget) // (2 * budget)


def _usd(amount: Decimal) -> str:
    return "$" + str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _usage_lines(plan: SessionPlan, actuals: Actuals) -> Iterator[str]:
    for family in Family:
        used: int = getattr(actuals, f"tokens_{family.value}")
        budget = plan.budget.for_family(family)
        if budget is None and not used:
            continue
        share = f" ({_percent(used, budget)}% of budget)" if budget else ""
        yield f"- {family.value.capitalize()}: {_tokens(used)} tokens{share}"
    total = plan.budget.total
    if total is None:
        yield f"- Total: {_tokens(actuals.tokens_total)} tokens"
    else:
        percent = actuals.budget_used_percent
        if percent is None and total:
            percent = _percent(actuals.tokens_total, total)
        share = f" ({percent}%)" if percent is not None else ""
        yield f"- Total: {_tokens(actuals.tokens_total)} / {_compact(total)}{share}"
    if actuals.cache_read_tokens:
        yield f"- Cache reads: {_tokens(actuals.cache_read_tokens)} tokens"
    cost = "unknown" if actuals.cost_usd is None else _usd(actuals.cost_usd)
    ceiling = plan.cost_budget_usd
    yield f"- Cost: {cost}" + (f" of {_usd(ceiling)} budget" if ceiling is not None else "")
    if actuals.git is not None:
        git = actuals.git
        yield (f"- Git: {_plural(git.commits, 'commit')}, {git.files_changed} files changed, "
               f"+{git.lines_added} -{git.lines_removed} lines")
    yield f"- Status: {actuals.status}"


def render_actuals_block(plan: SessionPlan, actuals: Actuals) -> str:
    """The `--- calsync actuals ---` block: usage per family with a budget or usage, total,
    cost, git, status; then COMPLETED and NEXT SESSION when the plan has goals. No clock."""
    lines = [ACTUALS_START, "ACTUAL USAGE:", *_usage_lines(plan, actuals)]
    if plan.goals:
        lines += ["", "COMPLETED:"]
        lines += [f"✅ {g.text}" if g.done else f"⏳ {g.text} - not done" for g in plan.goals]
        left = [f"- {g.text}" for g in plan.goals if not g.done]
        lines += ["", "NEXT SESSION:", *(left or ["- nothing left"])]
    lines.append(ACTUALS_END)
    return "\n".join(lines)


# --------------------------------------------------------------------------- plan block

_KEY = re.compile(
    r"(project|session[ _-]?type|framework|primary[ _-]?model|cost[ _-]?budget(?:[ _-]?usd)?)"
    r"[ \t]*:[ \t]*(.*)",
    re.IGNORECASE,
)
_KEY_FIELD = {"project": "project", "sessiontype": "session_type", "framework": "framework",
              "primarymodel": "primary_model", "costbudget": "cost_budget_usd",
              "costbudgetusd": "cost_budget_usd"}
_HEADER = re.compile(
    r"(token[ _-]?budget|goals|success[ _-]?criteria|deliverables|notes)[ \t]*:[ \t]*(.*)",
    re.IGNORECASE,
)
_HEADER_FIELD = {"tokenbudget": "budget", "goals": "goals", "successcriteria": "success_criteria",
                 "deliverables": "deliverables", "notes": "notes"}
_LISTS = ("goals", "success_criteria", "deliverables", "notes")
_BULLET = re.compile(r"(?:[-*•+]|\d+[.)])[ \t]+")
_CHECK = re.compile(r"(?:\[([ xX])\]|(✅))[ \t]*")
_BUDGET_LINE = re.compile(r"(?:[-*•+][ \t]+)?([^:]+):[ \t]*(.*)")
_COMMENT = re.compile(r"\([^()]*\)\s*$")
_TOKENS_WORD = re.compile(r"\s*tokens?\s*$", re.IGNORECASE)
_NEWLINE = re.compile(r"\r\n|\r|\n")


class PlanTextError(ValueError):
    """A value in the plan block that cannot be read: its line (from 1) and its field."""

    def __init__(self, line: int, message: str, field: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line, self.message, self.field = line, message, field


@dataclass(frozen=True)
class PlanText:
    """What the plan block of a text says.

    `found` names the fields the text set ("project", "budget.total", "goals", ...), so a
    caller can merge with the properties (properties win); `errors` holds, per field, a value
    that could not be read (raise it only if that field is needed). `start`/`end` delimit the
    block in the text (None: no block); `extra` is text inside that span that is not part of
    the plan (a stray paragraph), which `codec.write_plan` keeps below the block it renders.
    """

    plan: SessionPlan
    found: frozenset[str]
    errors: Mapping[str, PlanTextError] = _field(default_factory=dict)
    start: int | None = None
    end: int | None = None
    extra: str = ""


def _lines(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, line) for every line, `end` before the line break."""
    position = 0
    for brk in _NEWLINE.finditer(text):
        yield position, brk.start(), text[position:brk.start()]
        position = brk.end()
    yield position, len(text), text[position:]


def _budget_value(raw: str, number: int, field: str) -> int:
    value = _TOKENS_WORD.sub("", _COMMENT.sub("", raw)).strip()
    try:
        return parse_number(value)
    except ValueError:
        raise PlanTextError(number, f"budget is not a number: {value!r}", field) from None


class _Scanner:
    """The state machine behind `parse_plan_block`: one call to `line()` per line."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.lists: dict[str, list[str]] = {}
        self.errors: dict[str, PlanTextError] = {}
        self.section: str | None = None
        self.blank = False

    def line(self, number: int, line: str) -> bool:
        """Take one line; True when it belongs to the plan."""
        text = line.strip()
        if not text:
            self.blank = True
            return False
        after_blank, self.blank = self.blank, False
        try:
            return self._line(number, text, after_blank)
        except PlanTextError as exc:
            self.errors[exc.field] = exc
            self.values.pop(exc.field, None)
            return True

    def _line(self, number: int, text: str, after_blank: bool) -> bool:
        key = _KEY.fullmatch(text)
        if key:
            self.section = None
            self._key(number, key[1], key[2].strip())
            return True
        header = _HEADER.fullmatch(text)
        if header:
            self.section = _HEADER_FIELD[re.sub(r"[ _-]", "", header[1].lower())]
            self._header(number, header[2].strip())
            return True
        if self.section == "budget":
            return self._budget(number, text)
        if self.section in _LISTS:
            if after_blank and not (_BULLET.match(text) or _CHECK.match(text)):
                self.section = None
                return False
            self._item(text)
            return True
        return False

    def _set(self, field: str, value: object) -> None:
        self.values[field] = value
        self.errors.pop(field, None)

    def _key(self, number: int, name: str, value: str) -> None:
        field = _KEY_FIELD[re.sub(r"[ _-]", "", name.lower())]
        if field == "cost_budget_usd" and value:
            try:
                self._set(field, parse_usd(value))
            except ValueError as exc:
                raise PlanTextError(number, f"cost budget is {exc}", field) from None
        elif value:
            self._set(field, value)

    def _header(self, number: int, inline: str) -> None:
        section = self.section
        assert section is not None
        if section == "budget":
            if inline:
                self._set("budget.total", _budget_value(inline, number, "budget.total"))
        else:
            self.lists.setdefault(section, [])
            if inline:
                self._item(inline)

    def _budget(self, number: int, text: str) -> bool:
        match = _BUDGET_LINE.fullmatch(text)
        label = match[1].strip().lower() if match else ""
        family = Family.of(label)
        total = label.startswith("total")  # "Total:", "Total budget:"
        if match and (total or family is not Family.OTHER):
            field = "budget.total" if total else f"budget.{family.value}"
            self._set(field, _budget_value(match[2], number, field))
            return True
        self.section = None
        return False

    def _item(self, text: str) -> None:
        assert self.section is not None
        bullet = _BULLET.match(text)
        item = text[bullet.end():] if bullet else text
        if item:
            self.lists[self.section].append(item)

    def result(self) -> tuple[SessionPlan, frozenset[str]]:
        budget = Budget(**unflatten(self.values, "budget"))
        fields = {k: v for k, v in self.values.items() if "." not in k}
        lists: dict[str, object] = {k: tuple(v) for k, v in self.lists.items()}
        if "goals" in self.lists:
            lists["goals"] = tuple(_goal(item) for item in self.lists["goals"])
        plan = SessionPlan.model_validate({**fields, **lists, "budget": budget})
        return plan, frozenset(self.values) | frozenset(self.lists)


def _goal(item: str) -> Goal:
    check = _CHECK.match(item)
    if not check:
        return Goal(text=item)
    done = check[2] is not None or check[1] in ("x", "X")
    return Goal(text=item[check.end():], done=done)


def parse_plan_block(text: str) -> PlanText:
    """Read the plan block of a plain-text DESCRIPTION (see the module docstring).

    Headers match case-insensitively; numbers may carry thousands separators or a k
    suffix; a goal marked `[x]` or starting with ✅ is done. Lines inside the actuals block
    are ignored. A value that cannot be read is left out of `found` and put in `errors`.
    """
    blocks = find_actuals_blocks(text)
    scanner = _Scanner()
    span: list[int] = []
    strays: list[tuple[int, int]] = []  # non-blank lines that are not part of the plan
    for number, (start, end, line) in enumerate(_lines(text), 1):
        if any(s <= start < e for s, e in blocks):
            scanner.section = None
            strays.append((start, end))
        elif scanner.line(number, line):
            span = [span[0] if span else start, end]
        elif line.strip():
            strays.append((start, end))
    plan, found = scanner.result()
    if not span:
        return PlanText(plan, found, dict(scanner.errors))
    inside = [(s, e) for s, e in strays if span[0] <= s < span[1]]
    return PlanText(plan, found, dict(scanner.errors), span[0], span[1], _extra(text, inside))


def _extra(text: str, strays: list[tuple[int, int]]) -> str:
    """Runs of stray lines, each run as written, runs separated by one blank line."""
    runs: list[list[int]] = []
    for start, end in strays:
        if runs and not text[runs[-1][1]:start].strip():
            runs[-1][1] = end
        else:
            runs.append([start, end])
    return "\n\n".join(text[s:e] for s, e in runs)


def _marked(text: str) -> bool:
    """True when `text` would lose a leading mark or bullet when read back."""
    return bool(_CHECK.match(text) or _BULLET.match(text))


def render_plan_block(plan: SessionPlan) -> str:
    """The canonical plan block; `parse_plan_block(render_plan_block(p)).plan == p` for
    every plan whose texts are single lines without surrounding whitespace."""
    head = [f"{label}: {value}" for label, value in (
        ("Project", plan.project), ("Session Type", plan.session_type),
        ("Framework", plan.framework), ("Primary Model", plan.primary_model),
        ("Cost Budget", None if plan.cost_budget_usd is None
         else "$" + format_usd(plan.cost_budget_usd)),
    ) if value is not None]
    paragraphs = ["\n".join(head)] if head else []
    budget = plan.budget
    if budget != Budget():
        lines = ["TOKEN BUDGET:"]
        if budget.total is not None:
            lines.append(f"Total: {budget.total} tokens")
        for family in (Family.OPUS, Family.SONNET, Family.HAIKU):
            share = budget.for_family(family)
            if share is not None:
                lines.append(f"- {family.value.capitalize()}: {share} tokens")
        paragraphs.append("\n".join(lines))
    if plan.goals:
        goals = [f"{n}. " + ("[x] " if g.done else "[ ] " if _marked(g.text) else "") + g.text
                 for n, g in enumerate(plan.goals, 1)]
        paragraphs.append("\n".join(["GOALS:", *goals]))
    for header, items in (("SUCCESS CRITERIA", plan.success_criteria),
                          ("DELIVERABLES", plan.deliverables), ("NOTES", plan.notes)):
        if items:
            paragraphs.append("\n".join([f"{header}:", *(f"- {item}" for item in items)]))
    return "\n\n".join(paragraphs)


def has_plan_block(text: str) -> bool:
    """True when the plain `text` has a TOKEN BUDGET section with a Total line, the spec's
    test for a session event; a bad value still counts (read_plan reports it)."""
    if not re.search(r"token[ _-]?budget", text, re.IGNORECASE):
        return False
    parsed = parse_plan_block(text)
    return "budget.total" in parsed.found or "budget.total" in parsed.errors
