"""Session plans and actuals on icalendar VEVENTs (pure).

Every function works on one VEVENT the caller parsed and owns (`icalendar.Event`, or one
component of a parsed `Calendar`); the writers change it in place and touch nothing calsync
does not own: other properties, their parameters, VALARMs, ATTENDEEs and every DESCRIPTION
line outside the plan and actuals blocks stay as they were.

Reading: the X-CLAUDE-* properties win; a field they miss is taken from the DESCRIPTION's plan
block (plain text, or HTML after a Google web edit), else from Outlook's X-ALT-DESC.
Writing: properties and DESCRIPTION blocks both (Google and Outlook drop unknown X-
properties on import; the DESCRIPTION survives).

icalendar (7.2 and later) keeps an X- property it does not know as `vUnknown`: the value as
it stood in the file, not unescaped. The property table's parse/format functions work on
that form, and the writers store `vUnknown` values, so a written event serialises the same
before and after a round trip through text.
"""

from __future__ import annotations

from typing import Any

from icalendar import Component, vText, vUnknown
from icalendar.parser import unescape_backslash

from . import description as desc
from .errors import PlanError
from .model import Actuals, Budget, GitStats, SessionPlan
from .properties import (
    ACTUALS_PROPERTIES,
    BY_NAME,
    PLAN_PROPERTIES,
    PREFIX,
    Prop,
    unflatten,
)

_TEXT_SOURCES = ("DESCRIPTION", "X-ALT-DESC")


def _first(event: Component, name: str) -> Any:
    value = event.get(name)
    return value[0] if isinstance(value, list) else value


def _raw(value: Any) -> str:
    """The value as it stands in the content line (escaped TEXT stays escaped)."""
    if hasattr(value, "to_ical"):
        ical = value.to_ical()
        return ical.decode() if isinstance(ical, bytes) else str(ical)
    return str(value)


def _text(value: Any) -> str:
    """The text of a TEXT property (DESCRIPTION is unescaped by icalendar, X-ALT-DESC not)."""
    return unescape_backslash(str(value)) if isinstance(value, vUnknown) else str(value)


def _is_html(value: Any, text: str) -> bool:
    """Outlook's X-ALT-DESC says FMTTYPE=text/html; a DESCRIPTION is judged by its text."""
    fmttype = str(getattr(value, "params", {}).get("FMTTYPE", ""))
    return "html" in fmttype.lower() or desc.looks_like_html(text)


def _plain(value: Any) -> str:
    """The text of DESCRIPTION or X-ALT-DESC in the plain layout (HTML converted)."""
    text = _text(value)
    return desc.html_to_text(text) if _is_html(value, text) else text


def _set_first(event: Component, name: str, value: Any) -> None:
    """Replace the first `name` property (the only one, nearly always) keeping its place."""
    current = event.get(name)
    event[name] = [value, *current[1:]] if isinstance(current, list) else value


def _uid(event: Component) -> str | None:
    uid = _first(event, "UID")
    return str(uid) if uid is not None else None


def is_session_event(event: Component) -> bool:
    """Any X-CLAUDE- property, or a plan block with a TOKEN BUDGET Total line in the
    DESCRIPTION or X-ALT-DESC (`session-events.md`, "Which events are session events")."""
    if any(str(name).upper().startswith(PREFIX) for name in event):
        return True
    for name in _TEXT_SOURCES:
        value = _first(event, name)
        if value is not None and desc.has_plan_block(_plain(value)):
            return True
    return False


def unknown_properties(event: Component) -> tuple[str, ...]:
    """X-CLAUDE-* properties that are not in the table: kept as they are, and ignored."""
    return tuple(sorted(
        str(name).upper() for name in event
        if str(name).upper().startswith(PREFIX) and str(name).upper() not in BY_NAME
    ))


def _property_values(
    event: Component, props: tuple[Prop, ...], path: str | None, strict: bool,
) -> dict[str, Any]:
    """{field: value} of the properties present; a bad value raises PlanError if `strict`."""
    values: dict[str, Any] = {}
    for prop in props:
        value = _first(event, prop.name)
        if value is None or not _raw(value).strip():
            continue
        try:
            values[prop.field] = prop.parse(_raw(value))
        except ValueError as exc:
            if strict:
                raise PlanError(str(exc), path=path, uid=_uid(event), property=prop.name) from None
    return values


def _plan_texts(event: Component) -> list[tuple[str, desc.PlanText]]:
    texts = []
    for name in _TEXT_SOURCES:
        value = _first(event, name)
        if value is not None:
            texts.append((name, desc.parse_plan_block(_plain(value))))
    return texts


# What the plan block can say: every plan property, and the lists only the block holds.
_TEXT_FIELDS = (*(p.field for p in PLAN_PROPERTIES),
                "goals", "success_criteria", "deliverables", "notes")


def read_plan(event: Component, *, path: str | None = None) -> SessionPlan:
    """The plan of a session event: properties win, then DESCRIPTION, then X-ALT-DESC.

    Raises PlanError naming `path`, the UID and the property (or DESCRIPTION line) of a
    value that cannot be read, and when the per-model budgets add up to more than the total.
    """
    values = _property_values(event, PLAN_PROPERTIES, path, strict=True)
    texts = _plan_texts(event)
    for field in _TEXT_FIELDS:
        for name, text in texts:
            if field in values:
                break
            if field in text.errors:
                error = text.errors[field]
                raise PlanError(str(error), path=path, uid=_uid(event), property=name)
            if field in text.found:
                values[field] = _field(text.plan, field)
    budget = Budget(**unflatten(values, "budget"))
    plan = SessionPlan(budget=budget, **{k: v for k, v in values.items() if "." not in k})
    shares = [s for s in (budget.opus, budget.sonnet, budget.haiku) if s is not None]
    if budget.total is not None and sum(shares) > budget.total:
        raise PlanError(
            f"the per-model budgets add up to {sum(shares)} tokens, more than the total "
            f"{budget.total}", path=path, uid=_uid(event),
            property=PREFIX + "TOKEN-BUDGET-TOTAL",
            hint="raise the total or lower the Opus/Sonnet/Haiku shares",
        )
    return plan


def read_actuals(event: Component) -> Actuals | None:
    """What calsync wrote before, or None when the event has no actuals property.

    A value calsync cannot read counts as absent, so the next write repairs it.
    """
    if not any(_first(event, prop.name) is not None for prop in ACTUALS_PROPERTIES):
        return None
    values = _property_values(event, ACTUALS_PROPERTIES, None, strict=False)
    git = unflatten(values, "git")
    rest = {k: v for k, v in values.items() if "." not in k}
    return Actuals(**rest, git=GitStats(**git) if git else None)


def _field(model: Any, field: str) -> Any:
    """`model.budget.total` for "budget.total"; None below a nested model that is None."""
    for part in field.split("."):
        model = getattr(model, part) if model is not None else None
    return model


def _write_properties(event: Component, props: tuple[Prop, ...], model: Any) -> None:
    """Set each property from `model`; remove those whose value is None or empty."""
    for prop in props:
        value = _field(model, prop.field)
        current = _first(event, prop.name)
        if value is None or value in ("", ()):
            if current is not None:
                del event[prop.name]
            continue
        raw = prop.format(value)
        if current is None or _raw(current) != raw:
            event[prop.name] = vUnknown(raw)


def _write_text(event: Component, name: str, old: Any, new: str) -> None:
    """Store `new` as the text of `name`, keeping the parameters of `old`."""
    params = dict(old.params) if old is not None and hasattr(old, "params") else None
    if name == "DESCRIPTION":
        value: Any = vText(new, params=params)
    else:
        value = vUnknown(vText(new).to_ical().decode(), params=params)
    if old is None:
        event.add(name, value)
    else:
        _set_first(event, name, value)


def write_plan(event: Component, plan: SessionPlan) -> None:
    """Set the plan properties and make DESCRIPTION carry the plan block.

    A DESCRIPTION whose plan block already says `plan` is left alone. Otherwise its plan
    block is replaced (a stray paragraph inside it moves below it), or the block is put on
    top of a DESCRIPTION that has none. An HTML DESCRIPTION that must change becomes plain
    text. X-ALT-DESC is left as it is: read_plan prefers DESCRIPTION over it.
    """
    _write_properties(event, PLAN_PROPERTIES, plan)
    old = _first(event, "DESCRIPTION")
    plain = _plain(old) if old is not None else ""
    parsed = desc.parse_plan_block(plain)
    if parsed.plan == plan and not parsed.errors:
        return
    block = desc.render_plan_block(plan)
    if parsed.start is None or parsed.end is None:
        if not block:
            return
        new = block + ("\n\n" + plain if plain.strip() else "")
    else:
        extra = "\n\n" + parsed.extra if parsed.extra else ""
        new = plain[:parsed.start] + block + extra + plain[parsed.end:]
    _write_text(event, "DESCRIPTION", old, new)


def write_actuals(event: Component, plan: SessionPlan, actuals: Actuals) -> None:
    """Set the actuals properties and replace the actuals block in DESCRIPTION (created if
    absent) and in X-ALT-DESC when there is one. HTML stays HTML (the block goes in as
    HTML-safe text with <br>); a property whose value is None is removed."""
    _write_properties(event, ACTUALS_PROPERTIES, actuals)
    block = desc.render_actuals_block(plan, actuals)
    for name in _TEXT_SOURCES:
        old = _first(event, name)
        if old is None and name != "DESCRIPTION":
            continue
        text = _text(old) if old is not None else ""
        new = desc.replace_actuals_block(text, block, is_html=_is_html(old, text))
        if new != text:
            _write_text(event, name, old, new)
