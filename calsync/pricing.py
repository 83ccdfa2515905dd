"""Prices per model, and the cost of a usage record or a budget (pure).

The table ships in `calsync/data/prices.toml` (dated); the config may override or extend it.
A model with no known price costs `None`, never a silent zero: callers warn, naming it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import Any

from .errors import ConfigError
from .records import Family

LONG_CONTEXT_THRESHOLD = 200_000
_PER_TOKEN = 1_000_000.0
_SUFFIX = re.compile(r"(?:-\d{8}|@\d{8}|-v\d+(?::\d+)?|\[[^\]]*\])+$")
_RATE_KEYS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
# The model a family stands for when a budget is estimated (templates, suggestions).
FAMILY_REFERENCE_MODEL = {
    Family.OPUS: "claude-opus-4-5",
    Family.SONNET: "claude-sonnet-4-5",
    Family.HAIKU: "claude-haiku-4-5",
}


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    above_200k: Price | None = None

    def cost(self, inp: int, out: int, cw5m: int, cw1h: int, cr: int) -> float:
        rates = self
        if self.above_200k is not None and inp + cw5m + cw1h + cr > LONG_CONTEXT_THRESHOLD:
            rates = self.above_200k
        return (inp * rates.input + out * rates.output + cw5m * rates.cache_write_5m
                + cw1h * rates.cache_write_1h + cr * rates.cache_read) / _PER_TOKEN


_UNSEEN = Price(0.0, 0.0, 0.0, 0.0, 0.0)    # a model not looked up yet


@dataclass(frozen=True)
class PriceTable:
    as_of: date
    models: Mapping[str, Price]
    _cache: dict[str, Price | None] = field(default_factory=dict, compare=False, repr=False)

    def lookup(self, model: str) -> Price | None:
        """The price of a model id, matched exactly or without a date/context suffix."""
        if model in self._cache:
            return self._cache[model]
        key = model.strip().lower()
        key = key.removeprefix("anthropic/").removeprefix("anthropic.")
        price = self.models.get(key) or self.models.get(_SUFFIX.sub("", key))
        self._cache[model] = price
        return price

    def cost(self, model: str, inp: int, out: int, cw5m: int, cw1h: int, cr: int) -> float | None:
        price = self._cache.get(model, _UNSEEN)    # `lookup`, inline: a scan prices each line
        if price is _UNSEEN:
            price = self.lookup(model)
        return None if price is None else price.cost(inp, out, cw5m, cw1h, cr)


def _price(raw: Mapping[str, Any], where: str) -> Price:
    missing = [k for k in _RATE_KEYS if k not in raw]
    if missing:
        raise ConfigError(f"missing {', '.join(missing)}", key=where)
    try:
        rates = {k: float(raw[k]) for k in _RATE_KEYS}
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"not a number: {exc}", key=where) from None
    long = raw.get("above_200k")
    return Price(**rates, above_200k=_price(long, f"{where}.above_200k") if long else None)


def load_prices(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> PriceTable:
    """The shipped table, with `overrides` (model id → rates) laid over it."""
    text = resources.files("calsync.data").joinpath("prices.toml").read_text("utf-8")
    raw = tomllib.loads(text)
    models = {
        name.lower(): _price(rates, f"prices.{name}") for name, rates in raw["models"].items()
    }
    for name, rates in (overrides or {}).items():
        models[name.lower()] = _price(rates, f"prices.{name}")
    return PriceTable(as_of=raw["as_of"], models=models)
