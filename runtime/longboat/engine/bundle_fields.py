"""Typed reads of a Docker API object (ContainerConfig, HostConfig, an image config) for
:mod:`longboat.engine.bundle`: each wrong type is an :class:`InvalidArgument` naming the
Docker field (``HostConfig.Memory: must be an integer, got a string ("1g")``).

JSON ``null`` reads as the field's zero value, as Go's decoder gives Docker.
"""

from __future__ import annotations

import json
from typing import Any

from longboat.errors import InvalidArgument

_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
               int: "an integer", float: "a number", type(None): "null"}


def got(value: object) -> str:
    """How an error shows a value that has the wrong type."""
    kind = _JSON_TYPES.get(type(value), type(value).__name__)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return f"{kind} ({json.dumps(value)[:60]})"
    return kind


class Fields:
    """One Docker object, read field by field; ``prefix`` names it in errors."""

    def __init__(self, data: Any, prefix: str) -> None:
        if data is None:
            data = {}
        if type(data) is not dict:
            raise InvalidArgument(f"{prefix}: must be an object, got {got(data)}")
        self.data: dict[str, Any] = data
        self.prefix = prefix

    def name(self, field: str) -> str:
        return f"{self.prefix}.{field}"

    def fail(self, field: str, problem: str) -> InvalidArgument:
        return InvalidArgument(f"{self.name(field)}: {problem}")

    def get(self, field: str) -> Any:
        return self.data.get(field)

    def given(self, field: str) -> bool:
        """True when the field is present and not null."""
        return self.data.get(field) is not None

    def string(self, field: str, default: str = "") -> str:
        value = self.data.get(field)
        if value is None:
            return default
        if type(value) is not str:
            raise self.fail(field, f"must be a string, got {got(value)}")
        if "\0" in value:
            raise self.fail(field, "must not contain a NUL byte")
        return value

    def boolean(self, field: str) -> bool | None:
        value = self.data.get(field)
        if value is None:
            return None
        if type(value) is not bool:
            raise self.fail(field, f"must be a boolean, got {got(value)}")
        return value

    def flag(self, field: str) -> bool:
        return bool(self.boolean(field))

    def integer(self, field: str, *, bits: int = 64) -> int | None:
        value = self.data.get(field)
        if value is None:
            return None
        # 1e9 from a JSON encoder arrives as 1000000000.0: Go's decoder refuses it too.
        if type(value) is not int:
            raise self.fail(field, f"must be an integer, got {got(value)}")
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        if not low <= value <= high:
            raise self.fail(field, f"{value} does not fit in a {bits}-bit integer")
        return value

    def number(self, field: str, *, bits: int = 64) -> int:
        return self.integer(field, bits=bits) or 0

    def strings(self, field: str, *, str_slice: bool = False) -> list[str] | None:
        """A list of strings, None when absent. ``str_slice``: Docker's StrSlice, where a
        lone string stands for a one-element list (Cmd, Entrypoint)."""
        value = self.data.get(field)
        if value is None:
            return None
        if str_slice and type(value) is str:
            value = [value]
        if type(value) is not list:
            raise self.fail(field, f"must be an array of strings, got {got(value)}")
        for i, item in enumerate(value):
            if type(item) is not str:
                raise self.fail(f"{field}[{i}]", f"must be a string, got {got(item)}")
            if "\0" in item:
                raise self.fail(f"{field}[{i}]", "must not contain a NUL byte")
        return list(value)

    def objects(self, field: str) -> list[Fields]:
        value = self.data.get(field)
        if value is None:
            return []
        if type(value) is not list:
            raise self.fail(field, f"must be an array of objects, got {got(value)}")
        return [Fields(item, f"{self.name(field)}[{i}]") for i, item in enumerate(value)]

    def obj(self, field: str) -> Fields:
        return Fields(self.data.get(field), self.name(field))

    def string_map(self, field: str) -> dict[str, str]:
        value = self.data.get(field)
        if value is None:
            return {}
        if type(value) is not dict:
            raise self.fail(field, f"must be an object of strings, got {got(value)}")
        for key, item in value.items():
            if type(item) is not str:
                raise self.fail(f"{field}.{key}", f"must be a string, got {got(item)}")
            if "\0" in key or "\0" in item:
                raise self.fail(f"{field}.{key}", "must not contain a NUL byte")
        return dict(value)
