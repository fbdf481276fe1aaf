# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Wanted against existing: how every module decides whether something must change.

Pure functions over plain values (no Ansible, no engine), so unit tests load this file
by path. The three ways to compare one option are community.docker's:

- ``strict``: the existing value must equal the wanted one;
- ``ignore``: any existing value will do;
- ``allow_more_present``: for lists, sets and dicts, the existing value may hold more
  than the wanted one (every wanted item, key and value must be there).

An option the user did not set (``None``) is never compared: the engine's or the
image's default is as good as any.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

STRICT = "strict"
IGNORE = "ignore"
ALLOW_MORE_PRESENT = "allow_more_present"
METHODS = (STRICT, IGNORE, ALLOW_MORE_PRESENT)

# kinds of values
VALUE = "value"        # compared with ==
LIST = "list"          # order matters
SET = "set"            # order does not; items hashable or JSON-able
DICT = "dict"


class ComparisonError(ValueError):
    """A ``comparisons`` option that names an unknown option or method."""


def _key(item):
    if isinstance(item, (dict, list)):
        return json.dumps(item, sort_keys=True)
    return item


def _as_set(values):
    return set(_key(v) for v in (values or []))


def is_different(kind, method, wanted, actual):
    """True when ``actual`` does not satisfy ``wanted`` under ``method``."""
    if method == IGNORE or wanted is None:
        return False
    if kind == VALUE:
        return wanted != actual
    if kind == LIST:
        actual = list(actual or [])
        wanted = list(wanted)
        if method == ALLOW_MORE_PRESENT:
            return any(item not in actual for item in wanted)
        return wanted != actual
    if kind == SET:
        wanted_set, actual_set = _as_set(wanted), _as_set(actual)
        if method == ALLOW_MORE_PRESENT:
            return not wanted_set <= actual_set
        return wanted_set != actual_set
    if kind == DICT:
        actual = dict(actual or {})
        wanted = dict(wanted)
        if method == ALLOW_MORE_PRESENT:
            return any(key not in actual or actual[key] != value
                       for key, value in wanted.items())
        return wanted != actual
    raise ValueError("unknown kind of value %r" % (kind,))


def resolve_comparisons(options, given):
    """The method for each option: the defaults in ``options`` ({name: (kind, default)}),
    overridden by the user's ``comparisons`` (``given``; ``'*'`` sets every option).
    Raises :class:`ComparisonError` with a message that says what is allowed."""
    methods = dict((name, default) for name, (_kind, default) in options.items())
    given = dict(given or {})
    star = given.pop("*", None)
    if star is not None:
        if star not in (STRICT, IGNORE):
            raise ComparisonError(
                "comparisons: '*' must be 'strict' or 'ignore', not %r" % (star,))
        for name in methods:
            methods[name] = star
    for name, method in sorted(given.items()):
        if name not in options:
            raise ComparisonError(
                "comparisons: unknown option %r; comparable options are: %s"
                % (name, ", ".join(sorted(options))))
        if method not in METHODS:
            raise ComparisonError(
                "comparisons: %s: %r is not one of %s" % (name, method, ", ".join(METHODS)))
        kind = options[name][0]
        if method == ALLOW_MORE_PRESENT and kind == VALUE:
            raise ComparisonError(
                "comparisons: %s holds a single value; use 'strict' or 'ignore', not "
                "'allow_more_present'" % (name,))
        methods[name] = method
    return methods


class Differences:
    """What differs between wanted and existing, for ``changed``, ``diff`` and the
    messages that say why something was recreated."""

    def __init__(self):
        self._items = []

    def add(self, name, wanted, actual):
        self._items.append((name, wanted, actual))

    def __bool__(self):
        return bool(self._items)

    __nonzero__ = __bool__

    def __len__(self):
        return len(self._items)

    def __contains__(self, name):
        return any(item[0] == name for item in self._items)

    @property
    def names(self):
        return [item[0] for item in self._items]

    def as_list(self):
        return [dict(parameter=name, wanted=wanted, active=actual)
                for name, wanted, actual in self._items]

    def before_after(self):
        before = dict((name, actual) for name, _wanted, actual in self._items)
        after = dict((name, wanted) for name, wanted, _actual in self._items)
        return before, after


def compare_all(options, methods, wanted, actual, differences=None):
    """Compare every option in ``options`` ({name: (kind, default)}) whose wanted value
    is not None; record each difference. Returns the :class:`Differences`."""
    differences = Differences() if differences is None else differences
    for name in sorted(options):
        kind = options[name][0]
        want = wanted.get(name)
        have = actual.get(name)
        if is_different(kind, methods.get(name, STRICT), want, have):
            differences.add(name, want, have)
    return differences


def parse_size(value, name="size"):
    """Bytes from an int or a human size ('512m', '1.5G', '100k', '1024b'), binary units
    as docker's."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    units = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    if text.endswith("ib") or (text.endswith("b") and len(text) > 1 and text[-2] in units):
        text = text[:-2] if text.endswith("ib") else text[:-1]
    unit = 1
    if text and text[-1] in units:
        unit = units[text[-1]]
        text = text[:-1]
    try:
        number = float(text)
    except ValueError:
        raise ValueError("%s: %r is not a size; write bytes or a number with a unit: "
                         "b, k, m, g, t (e.g. 512m)" % (name, value))
    if number < 0:
        raise ValueError("%s: %r is negative" % (name, value))
    return int(number * unit)


def parse_duration(value, name="duration"):
    """Nanoseconds from a Go-style duration ('30s', '1m30s', '500ms', '2h') or seconds
    as a number."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value * 1000000000)
    text = str(value).strip()
    units = [("ms", 1000000), ("us", 1000), ("ns", 1), ("h", 3600 * 1000000000),
             ("m", 60 * 1000000000), ("s", 1000000000)]
    total, number = 0, ""
    i = 0
    if not text:
        raise ValueError("%s: an empty duration" % (name,))
    while i < len(text):
        char = text[i]
        if char.isdigit() or char == ".":
            number += char
            i += 1
            continue
        for unit, factor in units:
            if text.startswith(unit, i) and number:
                total += int(float(number) * factor)
                number = ""
                i += len(unit)
                break
        else:
            raise ValueError("%s: %r is not a duration; write e.g. 30s, 1m30s, 500ms"
                             % (name, value))
    if number:
        total += int(float(number) * 1000000000)   # bare seconds
    return total
