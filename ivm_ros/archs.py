"""Model-size records saved inside checkpoints as JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T", bound="ArchRecord")


class ArchRecord:
    """Mixin for a frozen dataclass of model sizes: ``to_dict()`` for JSON metadata, ``from_dict()`` back (JSON
    lists become tuples again; unknown fields are refused, so a file from another model fails loudly)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], d: dict[str, Any]) -> T:
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def replaced(self: T, items: Iterable[tuple[str, Any]]) -> T:
        """A copy with ``items`` ((field, value) pairs, e.g. from ``--arch static_size=128``) set; lists become
        tuples; ValueError naming the valid fields for an unknown one (the dataclass checks the values)."""
        known = [f.name for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        changes = {k: tuple(v) if isinstance(v, list) else v for k, v in items}
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(f"unknown {type(self).__name__} fields {unknown}; valid: {', '.join(known)}")
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
