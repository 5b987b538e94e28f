"""The dict round trip shared by every configuration dataclass saved with a checkpoint.

``from_dict`` rejects unknown keys, so a typo in a config file or an old checkpoint from
another version is reported instead of silently ignored.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, TypeVar

T = TypeVar("T", bound="ConfigDict")


class ConfigDict:
    """Mixin for dataclasses: ``to_dict()`` and a strict ``from_dict(data)``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: Any) -> T:
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}: expected a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}; known keys are "
                             f"{sorted(known)}")
        return cls(**data)
