"""The capability table against the kernel's own headers and /proc."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from longboat.errors import InvalidArgument
from longboat.linux import caps

pytestmark = pytest.mark.unit

_HEADER = Path("/usr/include/linux/capability.h")


def test_names_are_numbered_zero_to_forty_without_gaps() -> None:
    assert sorted(caps.NAMES.values()) == list(range(41))
    assert caps.NAMES["CAP_CHOWN"] == 0
    assert caps.NAMES["CAP_CHECKPOINT_RESTORE"] == 40
    assert all(name.startswith("CAP_") for name in caps.NAMES)
    assert {number: name for name, number in caps.NAMES.items()} == caps.BY_NUMBER


def test_names_match_the_kernel_header() -> None:
    if not _HEADER.exists():
        pytest.skip(f"{_HEADER} is absent (Debian package linux-libc-dev)")
    defined = {name: int(number) for name, number in
               re.findall(r"^#define\s+(CAP_[A-Z_]+)\s+(\d+)\s*$", _HEADER.read_text(), re.M)}
    known = {name: number for name, number in defined.items() if number <= caps.LAST_KNOWN}
    assert known == caps.NAMES


def test_last_cap_is_the_kernels_and_is_cached() -> None:
    expected = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    assert caps.last_cap() == expected
    assert caps.last_cap.cache_info().currsize == 1


def test_to_mask_sets_one_bit_per_name() -> None:
    mask, skipped = caps.to_mask(["CAP_CHOWN", "CAP_KILL", "CAP_KILL"], field="f")
    assert mask == 1 | 1 << 5
    assert skipped == []
    assert caps.to_mask([], field="f") == (0, [])


def test_to_mask_skips_names_above_the_host_limit_and_reports_them_once() -> None:
    mask, skipped = caps.to_mask(
        ["CAP_BPF", "CAP_CHOWN", "CAP_CHECKPOINT_RESTORE", "CAP_BPF"], field="f",
        host_last=38)
    assert mask == 1
    assert skipped == ["CAP_BPF", "CAP_CHECKPOINT_RESTORE"]


@pytest.mark.parametrize(("names", "problem"), [
    (["CAP_CHOWN", "CAP_FOO"], 'config.json: x.bounding[1]: unknown capability "CAP_FOO"'),
    (["cap_chown"], 'config.json: x.bounding[0]: unknown capability "cap_chown"'),
    (["CHOWN"], 'config.json: x.bounding[0]: unknown capability "CHOWN"'),
    (["CAP_CHOWN", 3], "config.json: x.bounding[1]: must be a capability name string, got 3"),
])
def test_to_mask_refuses_what_is_not_a_capability(names: list[object], problem: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        caps.to_mask(names, field="config.json: x.bounding")
    assert str(raised.value) == problem


def test_from_mask_round_trips_in_number_order() -> None:
    names = ["CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_CHECKPOINT_RESTORE"]
    mask, _ = caps.to_mask(names, field="f", host_last=40)
    assert caps.from_mask(mask) == ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE"]
    assert caps.from_mask(0) == []


def test_from_mask_keeps_bits_it_has_no_name_for() -> None:
    assert caps.from_mask(1 << 41 | 1) == ["CAP_CHOWN", "CAP_41"]
    with pytest.raises(ValueError):
        caps.from_mask(-1)


def test_all_mask_is_every_capability_the_host_knows() -> None:
    top = min(caps.last_cap(), caps.LAST_KNOWN)
    assert caps.ALL_MASK() == (1 << (top + 1)) - 1
    assert caps.from_mask(caps.ALL_MASK()) == [caps.BY_NUMBER[n] for n in range(top + 1)]


def test_this_process_bounding_set_fits_the_host_mask() -> None:
    # The kernel never puts a bit above cap_last_cap in a bounding set.
    status = Path("/proc/self/status").read_text()
    bounding = int(re.search(r"^CapBnd:\s*([0-9a-f]+)$", status, re.M)[1], 16)  # type: ignore[index]
    if caps.last_cap() <= caps.LAST_KNOWN:
        assert bounding & ~caps.ALL_MASK() == 0
