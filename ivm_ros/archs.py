"""Model-size records saved inside checkpoints as JSON."""

from __future__ import annotations

import dataclasses
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
