"""ParameterRanges: integer, continuous and categorical ranges, their scaling, and the Optuna distributions.

Scaling follows the service's definitions (API reference, ``HyperParameterScalingType``):
- ``Linear``: values spread evenly over [MinValue, MaxValue].
- ``Logarithmic``: their logarithms spread evenly; MinValue must be > 0.
- ``ReverseLogarithmic``: values crowd towards 1; continuous ranges within 0 <= x < 1 only. Optuna has no
  such scale, so the search runs on ``1 - x`` with a logarithmic scale and maps back.
- ``Auto``: the service picks; here Logarithmic when MinValue > 0 and the range spans at least two orders of
  magnitude (MaxValue / MinValue >= 100), else Linear.
A range is checked against the built-in's hyperparameter schema, so a bound the algorithm would reject is
an error naming the field before any job starts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from smlocal.errors import CustomerError

KINDS = {"IntegerParameterRanges": "Integer", "ContinuousParameterRanges": "Continuous",
         "CategoricalParameterRanges": "Categorical"}
SCALINGS = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
AUTO_LOG_SPAN = 100.0


def range_error(path: str, message: str) -> CustomerError:
    return CustomerError(f"Invalid tuning job field {path}: {message}")


@dataclass(frozen=True)
class Range:
    name: str
    kind: str  # Integer | Continuous | Categorical
    path: str  # where it was given, for messages
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Linear"  # resolved: Linear | Logarithmic | ReverseLogarithmic
    values: tuple[str, ...] = ()

    def distribution(self):
        """The Optuna distribution the search samples (for ReverseLogarithmic: of ``1 - x``)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "Categorical":
            return CategoricalDistribution(self.values)
        if self.kind == "Integer":
            return IntDistribution(int(self.low), int(self.high), log=self.scaling == "Logarithmic")
        if self.scaling == "ReverseLogarithmic":
            return FloatDistribution(1.0 - self.high, 1.0 - self.low, log=True)
        return FloatDistribution(self.low, self.high, log=self.scaling == "Logarithmic")

    def value(self, sampled: Any) -> str:
        """The hyperparameter string for a value Optuna sampled."""
        if self.kind == "Categorical":
            return str(sampled)
        if self.kind == "Integer":
            return str(int(sampled))
        number = 1.0 - float(sampled) if self.scaling == "ReverseLogarithmic" else float(sampled)
        return repr(min(max(number, self.low), self.high))

    def sampled(self, value: str) -> Any | None:
        """The inverse of ``value``: what Optuna would have sampled, or None if ``value`` is outside the range."""
        if self.kind == "Categorical":
            return value if value in self.values else None
        try:
            number = float(value)
        except ValueError:
            return None
        if not self.low <= number <= self.high:
            return None
        if self.kind == "Integer":
            return int(number)
        return 1.0 - number if self.scaling == "ReverseLogarithmic" else number


def _number(text: Any, path: str, integer: bool) -> float:
    try:
        number = float(str(text))
    except ValueError:
        raise range_error(path, f"{text!r} is not a number.") from None
    if not math.isfinite(number) or (integer and number != int(number)):
        raise range_error(path, f"{text!r} is not {'an integer' if integer else 'a finite number'}.")
    return number


def _scaling(kind: str, low: float, high: float, given: str, path: str) -> str:
    if given not in SCALINGS:
        raise range_error(f"{path}.ScalingType", f"{given!r} is not one of {', '.join(SCALINGS)}.")
    if given == "Auto":
        return "Logarithmic" if low > 0 and high / low >= AUTO_LOG_SPAN else "Linear"
    if given == "Logarithmic" and low <= 0:
        raise range_error(f"{path}.MinValue", f"Logarithmic scaling needs MinValue > 0 (got {low:g}).")
    if given == "ReverseLogarithmic":
        if kind == "Integer":
            raise range_error(f"{path}.ScalingType", "ReverseLogarithmic applies to continuous ranges only.")
        if low < 0 or high >= 1:
            raise range_error(f"{path}.ScalingType", f"ReverseLogarithmic needs 0 <= MinValue and MaxValue < 1 "
                                                     f"(got [{low:g}, {high:g}]).")
    return given


def parse_range(kind: str, entry: Any, path: str) -> Range:
    if not isinstance(entry, dict) or not isinstance(entry.get("Name"), str) or not entry["Name"]:
        raise range_error(f"{path}.Name", "each range needs a Name.")
    name = entry["Name"]
    if kind == "Categorical":
        values = entry.get("Values")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise range_error(f"{path}.Values", "must be a non-empty list of strings.")
        if len(set(values)) != len(values):
            raise range_error(f"{path}.Values", f"{values} repeats a value.")
        return Range(name, kind, path, values=tuple(values))
    integer = kind == "Integer"
    low = _number(entry.get("MinValue"), f"{path}.MinValue", integer)
    high = _number(entry.get("MaxValue"), f"{path}.MaxValue", integer)
    if low > high:
        raise range_error(f"{path}.MaxValue", f"MaxValue {high:g} is less than MinValue {low:g}.")
    scaling = _scaling(kind, low, high, entry.get("ScalingType", "Auto"), path)
    return Range(name, kind, path, low, high, scaling)


def parse_ranges(ranges: Any, path: str) -> tuple[Range, ...]:
    """Every range of a ParameterRanges object; a name tuned twice is an error."""
    if ranges is None:
        ranges = {}
    if not isinstance(ranges, dict):
        raise range_error(path, "must be an object of IntegerParameterRanges, ContinuousParameterRanges, "
                                "CategoricalParameterRanges.")
    if ranges.get("AutoParameters"):
        raise range_error(f"{path}.AutoParameters", "Autotune's AutoParameters are not supported locally; give "
                                                    "the ranges explicitly.")
    parsed: list[Range] = []
    for key, kind in KINDS.items():
        for i, entry in enumerate(ranges.get(key) or []):
            parsed.append(parse_range(kind, entry, f"{path}.{key}[{i}]"))
    seen: dict[str, str] = {}
    for r in parsed:
        if r.name in seen:
            raise range_error(f"{r.path}.Name", f"{r.name!r} is already tuned by {seen[r.name]}.")
        seen[r.name] = r.path
    if not parsed:
        raise range_error(path, "give at least one hyperparameter range to tune.")
    return tuple(parsed)


def check_against_schema(r: Range, param) -> None:
    """A range the algorithm cannot take: wrong kind for the parameter, or a bound or value it rejects."""
    if r.kind == "Integer" and param.kind != "int":
        raise range_error(f"{r.path}.Name", f"{r.name!r} is a {param.kind} hyperparameter, not an integer; "
                                            f"use {'ContinuousParameterRanges' if param.kind == 'float' else 'CategoricalParameterRanges'}.")
    if r.kind == "Continuous" and param.kind != "float":
        raise range_error(f"{r.path}.Name", f"{r.name!r} is a {param.kind} hyperparameter; use "
                                            f"{'IntegerParameterRanges' if param.kind == 'int' else 'CategoricalParameterRanges'}.")
    if r.kind == "Categorical":
        checks = [(f"{r.path}.Values[{i}]", v) for i, v in enumerate(r.values)]
    else:
        fmt = (lambda x: str(int(x))) if r.kind == "Integer" else repr
        checks = [(f"{r.path}.MinValue", fmt(r.low)), (f"{r.path}.MaxValue", fmt(r.high))]
    for where, text in checks:
        try:
            param.parse(text)
        except CustomerError:
            raise range_error(where, f"{text} is outside the valid values of {r.name!r}, which accepts "
                                     f"{param.accepts()}.") from None
