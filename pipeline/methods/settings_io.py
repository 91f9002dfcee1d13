"""Settings dataclasses back from the JSON that ``dataclasses.asdict`` wrote into a checkpoint."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def settings_from_dict(cls: type[T], raw: dict[str, Any], what: str, nested: dict[str, type] | None = None,
                       tuples: tuple[str, ...] = ()) -> T:
    """``cls(**raw)`` with nested settings rebuilt from dicts and ``tuples`` fields made tuples again
    (JSON has only lists). Unknown keys are an error naming ``what``, so a stale file is noticed."""
    unknown = sorted(set(raw) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} settings: {', '.join(unknown)}")
    values = dict(raw)
    for name, kind in (nested or {}).items():
        if isinstance(values.get(name), dict):
            values[name] = kind(**values[name])
    for name in tuples:
        if name in values:
            values[name] = tuple(values[name])
    return cls(**values)
