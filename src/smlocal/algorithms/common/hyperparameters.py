"""Declarative hyperparameter schemas shared by k-means and linear learner.

Each algorithm declares its names, types, defaults (as the container's ``default-input.json`` strings),
allowed values or ranges and whether ``auto`` is accepted. ``Schema.parse`` validates the
``hyperparameters.json`` strings and returns typed values; ``auto`` stays the string ``"auto"`` for the
algorithm to resolve. Messages use the AWS built-ins' own wording, as
their training logs print it.
"""
from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

from smlocal.errors import CustomerError

AUTO = "auto"
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "int" | "float" | "bool" | "str" | "list"
    default: str | None = None  # None: required
    choices: tuple[str, ...] | None = None  # allowed values for str / list items
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    auto: bool = False  # "auto" is accepted
    extra: tuple[str, ...] = ()  # further accepted literal strings (e.g. "balanced")

    @property
    def required(self) -> bool:
        return self.default is None

    def accepts(self) -> str:
        """What the parameter accepts, in the words of the built-ins' message."""
        if self.choices is not None and self.kind in ("str", "list"):
            listed = ", ".join(f"'{c}'" for c in self.choices)
            return f"one of the following: {listed}" if self.kind == "str" else f"a JSON list drawn from: {listed}"
        if self.kind == "bool":
            words = "'true', 'false'"
        else:
            noun = "an integer" if self.kind == "int" else "a number"
            bounds = []
            if self.minimum is not None:
                bounds.append(f"{'>' if self.exclusive_minimum else '>='} {_fmt(self.minimum)}")
            if self.maximum is not None:
                bounds.append(f"{'<' if self.exclusive_maximum else '<='} {_fmt(self.maximum)}")
            words = noun + (" " + " and ".join(bounds) if bounds else "")
        alternatives = [f"'{AUTO}'"] * self.auto + [f"'{e}'" for e in self.extra]
        return words + "".join(f" or {a}" for a in alternatives)

    def parse(self, raw: str) -> Any:
        text = str(raw).strip()
        if self.auto and text.lower() == AUTO:
            return AUTO
        if text.lower() in self.extra:
            return text.lower()
        value = self._convert(text)
        if value is None:
            raise CustomerError(
                f"The value '{raw}' is not valid for the '{self.name}' hyperparameter which accepts {self.accepts()}"
            )
        return value

    def _convert(self, text: str) -> Any:
        if self.kind == "bool":
            low = text.lower()
            return True if low in _TRUE else False if low in _FALSE else None
        if self.kind == "str":
            return text if self.choices is None or text in self.choices else None
        if self.kind == "list":
            return self._convert_list(text)
        try:
            number = float(text)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        if self.kind == "int":
            if number != int(number):
                return None
            number = int(number)
        return number if self._in_range(number) else None

    def _convert_list(self, text: str) -> list[str] | None:
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            # Spark sends the list without brackets or quotes: msd,ssd
            items = [t.strip().strip("'\"") for t in text.strip("[]").split(",") if t.strip()]
        if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
            return None
        if self.choices is not None and any(i not in self.choices for i in items):
            return None
        return items

    def _in_range(self, number: float) -> bool:
        if self.minimum is not None:
            if number < self.minimum or (self.exclusive_minimum and number == self.minimum):
                return False
        if self.maximum is not None:
            if number > self.maximum or (self.exclusive_maximum and number == self.maximum):
                return False
        return True


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


class Schema:
    """The set of hyperparameters one algorithm accepts."""

    def __init__(self, algorithm: str, params: list[Param]):
        self.algorithm = algorithm
        self.params = {p.name: p for p in params}

    def defaults(self) -> dict[str, str]:
        """The container's default-input.json: every optional name with its default string."""
        return {p.name: p.default for p in self.params.values() if p.default is not None}

    def parse(self, given: Mapping[str, str]) -> dict[str, Any]:
        """Validate ``given`` (hyperparameters.json) and return every parameter's typed value."""
        unknown = [name for name in given if name not in self.params]
        if unknown:
            name = unknown[0]
            hint = difflib.get_close_matches(name, list(self.params), n=1)
            did_you_mean = f" Did you mean '{hint[0]}'?" if hint else ""
            raise CustomerError(
                f"Additional properties are not allowed ('{name}' was unexpected): "
                f"'{name}' is not a {self.algorithm} hyperparameter.{did_you_mean}"
            )
        missing = [p.name for p in self.params.values() if p.required and p.name not in given]
        if missing:
            names = ", ".join(f"'{m}'" for m in missing)
            raise CustomerError(f"No value(s) were specified for {names} which are required hyperparameter(s)")
        merged = {**self.defaults(), **{k: str(v) for k, v in given.items()}}
        return {name: self.params[name].parse(value) for name, value in merged.items()}


def invalid(name: str, value: Any, accepts: str) -> CustomerError:
    """The built-ins' message for a value that passes its type check but not a cross-parameter rule."""
    return CustomerError(f"The value '{value}' is not valid for the '{name}' hyperparameter which accepts {accepts}")


class DimensionMismatch(CustomerError):
    """Data whose width is not ``feature_dim``; keeps the figures so that an algorithm can add a hint."""

    def __init__(self, message: str, channel: str, feature_dim: Any, data_dim: int):
        super().__init__(message)
        self.channel, self.feature_dim, self.data_dim = channel, feature_dim, data_dim


def dimension_error(channel: str, feature_dim: Any, data_dim: int) -> DimensionMismatch:
    """The built-ins' message for data whose width is not ``feature_dim`` (k-means and linear learner)."""
    return DimensionMismatch(
        f"Incorrect configuration or {channel} dataset provided. The value of feature_dim hyperparameter "
        f"'{feature_dim}' doesn't match {channel} data dimensionality '{data_dim}'. Please set feature_dim to "
        f"the number of features in {channel} dataset.", channel, feature_dim, data_dim)
