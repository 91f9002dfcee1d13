"""Settings changed from the command line: ``--set part.field=value``, read and type-checked.

Shared by ``pseudo-labels --set`` (parts of ``PseudoLabelSettings``) and ``fit --set`` (the
training settings of the segmentation network and the LGST students), so both read values and
word their errors the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

from pipeline.errors import SettingsError

_SCALAR_TYPES = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,), "None": (type(None),)}


def parse_assignments(assignments: Iterable[str], parts: Mapping[str, type],
                      reserved: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """``part.field=value`` texts as ``{part: {field: value}}``, checked.

    The value is read as JSON when it parses (``2``, ``0.4``, ``true``, ``null``, ``[100, 200]``),
    else as text; a list given for a tuple field becomes a tuple. ``parts`` maps each part name
    to its settings dataclass. A name that is not a field, a value of the wrong type, or a field
    in ``reserved`` (``{field: why}``, e.g. one set by its own option) is a ``ValueError`` naming
    the choices, so a typo cannot reach a stage."""
    changes: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        name = name.strip()
        part, _, field_name = name.partition(".")
        known = {f.name: f for f in fields(parts[part])} if part in parts else {}
        if not sep or field_name not in known:
            raise SettingsError(f"unknown setting {name!r} (write part.field=value; parts: {', '.join(parts)}; "
                             f"fields of {part!r}: {', '.join(known) or 'none'})")
        if field_name in (reserved or {}):
            raise SettingsError(f"setting {name} cannot be changed with --set: {reserved[field_name]}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        changes.setdefault(part, {})[field_name] = _checked(name, value, str(known[field_name].type))
    return changes


def _checked(name: str, value: Any, annotation: str) -> Any:
    # Annotations are strings here (``from __future__ import annotations``): "float | None",
    # "tuple[float, ...]"; a bool is an int to Python, so it only passes where bool is allowed.
    options = [option.strip() for option in annotation.split("|")]
    if any(option.startswith("tuple") for option in options) and isinstance(value, list):
        return tuple(value)
    allowed = tuple(t for option in options for t in _SCALAR_TYPES.get(option, ()))
    if isinstance(value, bool) and bool not in allowed:
        allowed = ()
    if not isinstance(value, allowed):
        raise SettingsError(f"setting {name} takes {annotation}, got {value!r}")
    return value
