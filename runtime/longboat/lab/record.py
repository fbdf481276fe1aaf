"""A lab's record, ``/run/longboat-lab/<name>/lab.json``: its plan and what was made.

The plan is written before anything is made, and each step is written before the
resource it names is created, so ``down`` after a crash (or a kill -9 of ``up``)
knows everything that may exist. Writes are atomic (write, fsync, rename).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator

from longboat.errors import NotFound
from longboat.lab import plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Record:
    def __init__(self, lab: plan.Lab, data: dict[str, Any] | None = None) -> None:
        self.lab = lab
        self.data: dict[str, Any] = data or {
            "Name": lab.name, "Subnet": lab.subnet, "Nodes": lab.count,
            "Status": "creating", "Created": int(time.time()), "UpPid": os.getpid(),
            "Made": {}}

    @property
    def status(self) -> str:
        return str(self.data.get("Status", "unknown"))

    def made(self, what: str) -> list[str]:
        return list(self.data["Made"].get(what, []))

    def step(self, what: str, step: str) -> None:
        """Note (and save) that ``step`` of ``what`` (the lab or a node) is being made."""
        steps = self.data["Made"].setdefault(what, [])
        if step not in steps:
            steps.append(step)
            self.save()

    def set_status(self, status: str) -> None:
        self.data["Status"] = status
        self.save()

    def save(self) -> None:
        os.makedirs(self.lab.state_dir, mode=0o700, exist_ok=True)
        tmp = self.lab.record_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.lab.record_file)


def load(name: str) -> Record:
    plan.check_name(name)
    path = os.path.join(plan.STATE_ROOT, name, "lab.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise NotFound(f"no lab named {name!r}") from None
    except ValueError as exc:
        raise NotFound(f"lab {name!r}: unreadable record {path}: {exc}") from None
    return Record(plan.Lab(data["Name"], data["Subnet"], int(data["Nodes"])), data)


def process_alive(pid: int) -> bool:
    """True for a live (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:][:1] != b"Z"


def names() -> list[str]:
    try:
        entries = sorted(os.listdir(plan.STATE_ROOT))
    except FileNotFoundError:
        return []
    return [e for e in entries
            if os.path.isfile(os.path.join(plan.STATE_ROOT, e, "lab.json"))]


def all_records() -> list[Record]:
    out = []
    for name in names():
        with contextlib.suppress(NotFound):
            out.append(load(name))
    return out


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Serialises the lab commands that make or remove labs on this host."""
    os.makedirs(plan.STATE_ROOT, mode=0o755, exist_ok=True)
    fd = os.open(os.path.join(plan.STATE_ROOT, ".lock"),
                 os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
