"""Validation of an OCI runtime config (a bundle's ``config.json``).

:func:`validate` is a hand-written check of what the OCI runtime schema
(``config-schema.json``, ``config-linux.json``, ``defs*.json``) requires of the fields a
Linux runtime uses, plus the semantic rules runc applies (a hostname needs a UTS
namespace, sysctls must be namespaced, a new user namespace needs ID mappings, ...). It
runs on every ``create``, so it uses no JSON-schema engine and costs a few stat calls;
the unit tests check that it agrees with the official schema.

It raises :class:`InvalidArgument` for the first problem, naming the file and the field
path (``config.json: mounts[2].destination: ...``), and returns warnings for what it
accepts but ignores. Unknown fields are ignored, as the spec requires.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import stat
from collections.abc import Collection

from longboat.errors import InvalidArgument
from longboat.linux import caps, libc
from longboat.oci.mountopts import PROPAGATION

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    from typing import Any, Final

CONFIG_FILE: Final = "config.json"

#: Namespace type (``linux.namespaces[].type``) -> the clone/unshare/setns flag.
NAMESPACES: Final[dict[str, int]] = {
    "pid": libc.CLONE_NEWPID,
    "network": libc.CLONE_NEWNET,
    "mount": libc.CLONE_NEWNS,
    "ipc": libc.CLONE_NEWIPC,
    "uts": libc.CLONE_NEWUTS,
    "user": libc.CLONE_NEWUSER,
    "cgroup": libc.CLONE_NEWCGROUP,
    "time": libc.CLONE_NEWTIME,
}

#: The hook lists of ``hooks``, in the order the runtime runs them.
HOOKS: Final = ("prestart", "createRuntime", "createContainer", "startContainer",
                "poststart", "poststop")

#: ``process.rlimits[].type`` -> the resource number for setrlimit/prlimit (the generic
#: Linux numbering, which x86_64 and aarch64 use).
RLIMITS: Final[dict[str, int]] = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}

_CAPABILITY_SETS: Final = ("bounding", "effective", "inheritable", "permitted", "ambient")


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------

_INT32 = (-(1 << 31), (1 << 31) - 1)
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT16 = (0, (1 << 16) - 1)
_UINT32 = (0, (1 << 32) - 1)
_UINT64 = (0, (1 << 64) - 1)

_OCI_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?")
_CPU_LIST = re.compile(r"(\d+)(?:-(\d+))?")
_PAGE_SIZE = re.compile(r"[1-9][0-9]*[KMG]B")
# Sysctls that live in the IPC namespace (by prefix), as runc and the kernel have them.
_IPC_SYSCTL_PREFIXES = ("kernel.msg", "kernel.sem", "kernel.shm", "fs.mqueue.")
_UTS_SYSCTLS = {"kernel.hostname": "hostname", "kernel.domainname": "domainname"}
# Tuples, not sets: error messages list them in this order.
_IO_PRIORITY_CLASSES = ("IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE")
_SCHEDULER_POLICIES = ("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO",
                       "SCHED_IDLE", "SCHED_DEADLINE")
_SCHEDULER_FLAGS = ("SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN",
                    "SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_KEEP_PARAMS",
                    "SCHED_FLAG_UTIL_CLAMP_MIN", "SCHED_FLAG_UTIL_CLAMP_MAX")
_PERSONALITY_DOMAINS = ("LINUX", "LINUX32")
_DEVICE_TYPES = frozenset("cbup")
_DEVICE_RULE_TYPES = frozenset("abc")
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
               int: "an integer", float: "a number", type(None): "null"}


def _got(value: object) -> str:
    kind = _JSON_TYPES.get(type(value), type(value).__name__)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return f"{kind} ({json.dumps(value)[:60]})"
    return kind


class _Check:
    """One validation run: the checks in field order, the facts later checks need."""

    def __init__(self, config: Any, bundle: str) -> None:
        self.config = config
        self.bundle = bundle
        self.warnings: list[str] = []
        self.namespaces: dict[str, dict[str, Any]] = {}  # type -> entry
        # (containerID, hostID, size) ranges of a new user namespace, None without one.
        self.uid_ranges: list[tuple[int, int, int]] | None = None
        self.gid_ranges: list[tuple[int, int, int]] | None = None

    # ---- primitives --------------------------------------------------------------

    @staticmethod
    def fail(path: str, problem: str) -> InvalidArgument:
        return InvalidArgument(f"{CONFIG_FILE}: {path}: {problem}")

    def warn(self, message: str) -> None:
        self.warnings.append(f"{CONFIG_FILE}: {message}")

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if type(value) is not dict:
            raise self.fail(path, f"must be an object, got {_got(value)}")
        return value

    def array(self, value: Any, path: str) -> list[Any]:
        if type(value) is not list:
            raise self.fail(path, f"must be an array, got {_got(value)}")
        return value

    def string(self, value: Any, path: str) -> str:
        if type(value) is not str:
            raise self.fail(path, f"must be a string, got {_got(value)}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if type(value) is not bool:
            raise self.fail(path, f"must be a boolean, got {_got(value)}")
        return value

    def integer(self, value: Any, path: str, bounds: tuple[int, int]) -> int:
        if type(value) is not int:
            raise self.fail(path, f"must be an integer, got {_got(value)}")
        low, high = bounds
        if not low <= value <= high:
            raise self.fail(path, f"must be an integer in {low}..{high}, got {value}")
        return value

    def choice(self, value: Any, path: str, choices: Collection[str], what: str) -> str:
        if type(value) is not str:
            raise self.fail(path, f"must be a string, got {_got(value)}")
        if value not in choices:
            raise self.fail(path, f"unknown {what} {json.dumps(value)} "
                                  f"(known: {', '.join(choices)})")
        return value

    def strings(self, value: Any, path: str) -> list[str]:
        items = self.array(value, path)
        for i, item in enumerate(items):
            if type(item) is not str:
                raise self.fail(f"{path}[{i}]", f"must be a string, got {_got(item)}")
        return items

    def absolute(self, value: Any, path: str) -> str:
        text = self.string(value, path)
        if not text.startswith("/"):
            raise self.fail(path, f"must be an absolute path, got {json.dumps(text)}")
        if "\0" in text:
            raise self.fail(path, "must not contain a NUL byte")
        return text

    def absolutes(self, value: Any, path: str) -> None:
        for i, item in enumerate(self.array(value, path)):
            self.absolute(item, f"{path}[{i}]")

    def env(self, value: Any, path: str) -> None:
        for i, item in enumerate(self.strings(value, path)):
            name, sep, _ = item.partition("=")
            if not sep or not name:
                raise self.fail(f"{path}[{i}]",
                                f"must be NAME=VALUE, got {json.dumps(item)[:80]}")
            if "\0" in item:
                raise self.fail(f"{path}[{i}]", "must not contain a NUL byte")

    def string_map(self, value: Any, path: str) -> dict[str, Any]:
        mapping = self.obj(value, path)
        for key, item in mapping.items():
            if type(item) is not str:
                raise self.fail(f"{path}.{key}", f"must be a string, got {_got(item)}")
        return mapping

    def ints(self, obj: dict[str, Any], path: str, names: tuple[str, ...],
             bounds: tuple[int, int]) -> None:
        for name in names:
            if name in obj:
                self.integer(obj[name], f"{path}.{name}", bounds)

    def bools(self, obj: dict[str, Any], path: str, names: tuple[str, ...]) -> None:
        for name in names:
            if name in obj:
                self.boolean(obj[name], f"{path}.{name}")

    def required(self, obj: dict[str, Any], name: str, path: str) -> Any:
        if name not in obj:
            raise self.fail(f"{path}.{name}" if path else name, "is required")
        return obj[name]

    def cpu_list(self, value: Any, path: str, *, spaces: bool = False) -> None:
        text = self.string(value, path)
        if spaces:
            text = text.replace(" ", "")
        if not text:
            return
        for part in text.split(","):
            match = _CPU_LIST.fullmatch(part)
            if match is None or (match[2] is not None and int(match[1]) > int(match[2])):
                raise self.fail(path, f'must be a list like "0-2,4", got {json.dumps(text)}')

    # ---- the config, field by field ------------------------------------------------

    def run(self, require_process: bool) -> None:
        config = self.config
        if type(config) is not dict:
            raise InvalidArgument(f"{CONFIG_FILE}: must be a JSON object, got {_got(config)}")
        self.oci_version()
        self.root()
        if "linux" in config:
            self.linux(self.obj(config["linux"], "linux"))
        if "mounts" in config:
            self.mounts(config["mounts"])
        if "process" in config and config["process"] is not None:
            self.process(self.obj(config["process"], "process"))
        elif require_process:
            raise self.fail("process", "is required to create a container")
        for name in ("hostname", "domainname"):
            if name in config and self.string(config[name], name) \
                    and "uts" not in self.namespaces:
                raise self.fail(name, "needs a uts namespace (add {\"type\": \"uts\"} "
                                      "to linux.namespaces)")
        if "hooks" in config:
            self.hooks(self.obj(config["hooks"], "hooks"))
        if "annotations" in config:
            self.string_map(config["annotations"], "annotations")

    def oci_version(self) -> None:
        version = self.string(self.required(self.config, "ociVersion", ""), "ociVersion")
        match = _OCI_VERSION.fullmatch(version)
        if match is None:
            raise self.fail("ociVersion", f"must be a semantic version like \"1.1.0\", "
                                          f"got {json.dumps(version)}")
        if match[1] != "1":
            raise self.fail("ociVersion", f"version {version} is not supported "
                                          "(longboat-runtime reads 1.x)")

    def root(self) -> None:
        root = self.obj(self.required(self.config, "root", ""), "root")
        path = self.string(self.required(root, "path", "root"), "root.path")
        if not path:
            raise self.fail("root.path", "must not be empty")
        if "readonly" in root:
            self.boolean(root["readonly"], "root.readonly")
        full = os.path.join(self.bundle, path)
        try:
            mode = os.stat(full).st_mode
        except FileNotFoundError:
            raise self.fail("root.path", f"{full} does not exist") from None
        except OSError as e:
            raise self.fail("root.path", f"{full}: {e.strerror}") from None
        if not stat.S_ISDIR(mode):
            raise self.fail("root.path", f"{full} is not a directory")

    def mounts(self, value: Any) -> None:
        for i, item in enumerate(self.array(value, "mounts")):
            path = f"mounts[{i}]"
            mount = self.obj(item, path)
            self.absolute(self.required(mount, "destination", path), f"{path}.destination")
            for name in ("type", "source"):
                if name in mount:
                    self.string(mount[name], f"{path}.{name}")
            if "options" in mount:
                self.strings(mount["options"], f"{path}.options")
            for name in ("uidMappings", "gidMappings"):
                if name in mount:
                    self.id_mappings(mount[name], f"{path}.{name}")

    def process(self, process: dict[str, Any]) -> None:
        args = process.get("args")
        if type(args) is not list or not args or any(type(a) is not str for a in args):
            raise self.fail("process.args", "must be a non-empty array of strings")
        for i, arg in enumerate(args):
            if "\0" in arg:
                raise self.fail(f"process.args[{i}]", "must not contain a NUL byte")
        self.absolute(self.required(process, "cwd", "process"), "process.cwd")
        if "env" in process:
            self.env(process["env"], "process.env")
        self.bools(process, "process", ("terminal", "noNewPrivileges"))
        if "consoleSize" in process:
            size = self.obj(process["consoleSize"], "process.consoleSize")
            for name in ("height", "width"):
                self.integer(self.required(size, name, "process.consoleSize"),
                             f"process.consoleSize.{name}", _UINT64)
        if "user" in process:
            self.user(self.obj(process["user"], "process.user"))
        if "capabilities" in process:
            self.capabilities(self.obj(process["capabilities"], "process.capabilities"))
        if "rlimits" in process:
            self.rlimits(process["rlimits"])
        if "oomScoreAdj" in process:
            self.integer(process["oomScoreAdj"], "process.oomScoreAdj", (-1000, 1000))
        for name in ("apparmorProfile", "selinuxLabel"):
            if name in process and self.string(process[name], f"process.{name}"):
                self.warn(f"process.{name} is ignored (longboat-runtime does not support "
                          f"{'AppArmor' if name == 'apparmorProfile' else 'SELinux'})")
        if "ioPriority" in process:
            prio = self.obj(process["ioPriority"], "process.ioPriority")
            self.choice(self.required(prio, "class", "process.ioPriority"),
                        "process.ioPriority.class", _IO_PRIORITY_CLASSES, "class")
            self.ints(prio, "process.ioPriority", ("priority",), _INT32)
        if "scheduler" in process:
            self.scheduler(self.obj(process["scheduler"], "process.scheduler"))
        if "execCPUAffinity" in process:
            affinity = self.obj(process["execCPUAffinity"], "process.execCPUAffinity")
            for name in ("initial", "final"):
                if name in affinity:
                    self.cpu_list(affinity[name], f"process.execCPUAffinity.{name}",
                                  spaces=True)

    def user(self, user: dict[str, Any]) -> None:
        for name in ("uid", "gid"):
            self.integer(self.required(user, name, "process.user"), f"process.user.{name}",
                         _UINT32)
        self.ints(user, "process.user", ("umask",), _UINT32)
        if "additionalGids" in user:
            for i, gid in enumerate(self.array(user["additionalGids"],
                                               "process.user.additionalGids")):
                self.integer(gid, f"process.user.additionalGids[{i}]", _UINT32)
        if "username" in user:
            self.string(user["username"], "process.user.username")
        # In a new user namespace, an unmapped ID makes setuid/setgroups fail with a
        # bare EINVAL inside the container's init; say which one up front.
        checks = [("uid", self.uid_ranges, "uidMappings", user["uid"]),
                  ("gid", self.gid_ranges, "gidMappings", user["gid"])]
        checks += [(f"additionalGids[{i}]", self.gid_ranges, "gidMappings", gid)
                   for i, gid in enumerate(user.get("additionalGids", ()))]
        for name, id_ranges, mappings, value in checks:
            if id_ranges is not None and not any(
                    inside <= value < inside + size for inside, _, size in id_ranges):
                raise self.fail(f"process.user.{name}",
                                f"{value} is not mapped by linux.{mappings}")

    def capabilities(self, sets: dict[str, Any]) -> None:
        masks: dict[str, int] = {}
        skipped: list[str] = []
        host_last = caps.last_cap()
        for name in _CAPABILITY_SETS:
            if name in sets:
                path = f"process.capabilities.{name}"
                names = self.array(sets[name], path)
                mask, missing = caps.to_mask(names, field=f"{CONFIG_FILE}: {path}",
                                             host_last=host_last)
                masks[name] = mask
                skipped.extend(n for n in missing if n not in skipped)
        if skipped:
            self.warn(f"process.capabilities: {', '.join(skipped)} unknown to the host "
                      f"kernel (cap_last_cap {host_last}), ignored")
        ambient = masks.get("ambient", 0)
        lost = ambient & ~(masks.get("inheritable", 0) & masks.get("permitted", 0))
        if lost:
            self.warn(f"process.capabilities.ambient: {', '.join(caps.from_mask(lost))} "
                      "not in both inheritable and permitted; the kernel will not raise "
                      "them")

    def rlimits(self, value: Any) -> None:
        seen: dict[str, int] = {}
        for i, item in enumerate(self.array(value, "process.rlimits")):
            path = f"process.rlimits[{i}]"
            rlimit = self.obj(item, path)
            kind = self.string(self.required(rlimit, "type", path), f"{path}.type")
            if kind not in RLIMITS:
                raise self.fail(f"{path}.type", f"unknown rlimit {json.dumps(kind)}")
            if kind in seen:
                raise self.fail(f"{path}.type", f"{kind} is already set at "
                                                f"process.rlimits[{seen[kind]}]")
            seen[kind] = i
            soft = self.integer(self.required(rlimit, "soft", path), f"{path}.soft", _UINT64)
            hard = self.integer(self.required(rlimit, "hard", path), f"{path}.hard", _UINT64)
            if soft > hard:
                raise self.fail(path, f"soft limit {soft} is above hard limit {hard}")

    def scheduler(self, sched: dict[str, Any]) -> None:
        self.choice(self.required(sched, "policy", "process.scheduler"),
                    "process.scheduler.policy", _SCHEDULER_POLICIES, "policy")
        self.ints(sched, "process.scheduler", ("nice", "priority"), _INT32)
        self.ints(sched, "process.scheduler", ("runtime", "deadline", "period"), _UINT64)
        if "flags" in sched:
            for i, flag in enumerate(self.array(sched["flags"], "process.scheduler.flags")):
                self.choice(flag, f"process.scheduler.flags[{i}]", _SCHEDULER_FLAGS, "flag")

    def hooks(self, hooks: dict[str, Any]) -> None:
        for name in HOOKS:
            if name not in hooks:
                continue
            for i, item in enumerate(self.array(hooks[name], f"hooks.{name}")):
                path = f"hooks.{name}[{i}]"
                hook = self.obj(item, path)
                self.absolute(self.required(hook, "path", path), f"{path}.path")
                if "args" in hook:
                    self.strings(hook["args"], f"{path}.args")
                if "env" in hook:
                    self.env(hook["env"], f"{path}.env")
                if "timeout" in hook:
                    self.integer(hook["timeout"], f"{path}.timeout", (1, _INT64[1]))

    def id_mappings(self, value: Any, path: str) -> list[tuple[int, int, int]]:
        ranges = []
        for i, item in enumerate(self.array(value, path)):
            entry = f"{path}[{i}]"
            mapping = self.obj(item, entry)
            inside, outside, size = (
                self.integer(self.required(mapping, name, entry), f"{entry}.{name}", _UINT32)
                for name in ("containerID", "hostID", "size"))
            if size == 0:
                raise self.fail(f"{entry}.size", "must be at least 1")
            ranges.append((inside, outside, size))
        # The kernel refuses overlapping ranges on either side with a bare EINVAL.
        for side, label in ((0, "containerID"), (1, "hostID")):
            spans = sorted((r[side], r[side] + r[2]) for r in ranges)
            for (_, end), (start, _) in itertools.pairwise(spans):
                if start < end:
                    raise self.fail(path, f"ranges overlap on the {label} side at {start}")
        return ranges

    # ---- linux -------------------------------------------------------------------

    def linux(self, linux: dict[str, Any]) -> None:
        if "namespaces" in linux:
            self.linux_namespaces(linux["namespaces"])
        self.user_mappings(linux)
        if "devices" in linux:
            self.devices(linux["devices"])
        if "cgroupsPath" in linux:
            self.string(linux["cgroupsPath"], "linux.cgroupsPath")
        if "resources" in linux:
            self.resources(self.obj(linux["resources"], "linux.resources"))
        if "sysctl" in linux:
            self.sysctl(self.string_map(linux["sysctl"], "linux.sysctl"))
        if "rootfsPropagation" in linux:
            self.choice(linux["rootfsPropagation"], "linux.rootfsPropagation", PROPAGATION,
                        "propagation")
        for name in ("maskedPaths", "readonlyPaths"):
            if name in linux:
                self.absolutes(linux[name], f"linux.{name}")
                if linux[name] and "mount" not in self.namespaces:
                    raise self.fail(f"linux.{name}", "needs a mount namespace")
        if "mountLabel" in linux:
            self.string(linux["mountLabel"], "linux.mountLabel")
        if linux.get("seccomp") is not None:
            self.obj(linux["seccomp"], "linux.seccomp")
            self.warn("linux.seccomp is ignored (longboat-runtime does not support "
                      "seccomp yet)")
        if "personality" in linux:
            personality = self.obj(linux["personality"], "linux.personality")
            if "domain" in personality:
                self.choice(personality["domain"], "linux.personality.domain",
                            _PERSONALITY_DOMAINS, "domain")
            if "flags" in personality:
                self.strings(personality["flags"], "linux.personality.flags")
        if "timeOffsets" in linux:
            offsets = self.obj(linux["timeOffsets"], "linux.timeOffsets")
            for clock in ("boottime", "monotonic"):
                if clock in offsets:
                    path = f"linux.timeOffsets.{clock}"
                    offset = self.obj(offsets[clock], path)
                    self.ints(offset, path, ("secs",), _INT64)
                    self.ints(offset, path, ("nanosecs",), (0, 999_999_999))
            if offsets and "time" not in self.namespaces:
                raise self.fail("linux.timeOffsets", "needs a time namespace")

    def linux_namespaces(self, value: Any) -> None:
        for i, item in enumerate(self.array(value, "linux.namespaces")):
            path = f"linux.namespaces[{i}]"
            entry = self.obj(item, path)
            kind = self.choice(self.required(entry, "type", path), f"{path}.type", NAMESPACES,
                               "namespace type")
            if kind in self.namespaces:
                first = list(self.namespaces).index(kind)
                raise self.fail(f"{path}.type", f'duplicate namespace "{kind}" (also at '
                                                f"linux.namespaces[{first}])")
            self.namespaces[kind] = entry
            if "path" in entry:
                ns_path = self.absolute(entry["path"], f"{path}.path")
                if not os.path.exists(ns_path):
                    raise self.fail(f"{path}.path", f"{ns_path} does not exist")

    def user_mappings(self, linux: dict[str, Any]) -> None:
        present = [n for n in ("uidMappings", "gidMappings") if linux.get(n)]
        ranges = {name: self.id_mappings(linux[name], f"linux.{name}")
                  for name in ("uidMappings", "gidMappings") if name in linux}
        user = self.namespaces.get("user")
        if user is None:
            if present:
                raise self.fail(f"linux.{present[0]}", "needs a user namespace (add "
                                "{\"type\": \"user\"} to linux.namespaces)")
            return
        if "path" in user:
            if present:
                self.warn(f"linux.{present[0]} is ignored: the user namespace is joined "
                          "from its path and keeps its own mappings")
            return
        for name in ("uidMappings", "gidMappings"):
            if name not in present:
                raise self.fail(f"linux.{name}", "is required for a new user namespace")
        self.uid_ranges = ranges["uidMappings"]
        self.gid_ranges = ranges["gidMappings"]

    def devices(self, value: Any) -> None:
        for i, item in enumerate(self.array(value, "linux.devices")):
            path = f"linux.devices[{i}]"
            device = self.obj(item, path)
            kind = self.string(self.required(device, "type", path), f"{path}.type")
            if kind not in _DEVICE_TYPES:
                raise self.fail(f"{path}.type", f"must be c, b, u or p, got {json.dumps(kind)}")
            self.absolute(self.required(device, "path", path), f"{path}.path")
            for name in ("major", "minor"):
                if kind != "p":
                    self.required(device, name, path)
                if name in device:
                    self.integer(device[name], f"{path}.{name}", (0, _INT64[1]))
            # The schema stops at 0o777; permission bits with setuid/setgid/sticky
            # (what moby and containerd write from a host device) are accepted too.
            self.ints(device, path, ("fileMode",), (0, 0o7777))
            self.ints(device, path, ("uid", "gid"), _UINT32)

    def resources(self, res: dict[str, Any]) -> None:
        base = "linux.resources"
        if "memory" in res:
            path = f"{base}.memory"
            memory = self.obj(res["memory"], path)
            self.ints(memory, path, ("limit", "reservation", "swap", "kernel", "kernelTCP"),
                      _INT64)
            self.ints(memory, path, ("swappiness",), (0, 100))
            self.bools(memory, path, ("disableOOMKiller", "useHierarchy", "checkBeforeUpdate"))
        if "cpu" in res:
            path = f"{base}.cpu"
            cpu = self.obj(res["cpu"], path)
            self.ints(cpu, path, ("shares", "period", "burst", "realtimePeriod"), _UINT64)
            self.ints(cpu, path, ("quota", "realtimeRuntime", "idle"), _INT64)
            for name in ("cpus", "mems"):
                if name in cpu:
                    self.cpu_list(cpu[name], f"{path}.{name}")
        if "pids" in res:
            pids = self.obj(res["pids"], f"{base}.pids")
            self.integer(self.required(pids, "limit", f"{base}.pids"), f"{base}.pids.limit",
                         _INT64)
        if "blockIO" in res:
            self.block_io(self.obj(res["blockIO"], f"{base}.blockIO"))
        if "devices" in res:
            for i, item in enumerate(self.array(res["devices"], f"{base}.devices")):
                path = f"{base}.devices[{i}]"
                rule = self.obj(item, path)
                self.boolean(self.required(rule, "allow", path), f"{path}.allow")
                if "type" in rule and self.string(rule["type"], f"{path}.type") \
                        not in _DEVICE_RULE_TYPES:
                    raise self.fail(f"{path}.type",
                                    f"must be a, b or c, got {json.dumps(rule['type'])}")
                self.ints(rule, path, ("major", "minor"), (-1, _INT64[1]))
                if "access" in rule:
                    access = self.string(rule["access"], f"{path}.access")
                    if access.strip("rwm"):
                        raise self.fail(f"{path}.access", "must be made of r, w and m, "
                                                          f"got {json.dumps(access)}")
        if "hugepageLimits" in res:
            for i, item in enumerate(self.array(res["hugepageLimits"],
                                                f"{base}.hugepageLimits")):
                path = f"{base}.hugepageLimits[{i}]"
                limit = self.obj(item, path)
                size = self.string(self.required(limit, "pageSize", path), f"{path}.pageSize")
                if _PAGE_SIZE.fullmatch(size) is None:
                    raise self.fail(f"{path}.pageSize",
                                    f'must be like "2MB" or "1GB", got {json.dumps(size)}')
                self.integer(self.required(limit, "limit", path), f"{path}.limit", _UINT64)
        if "network" in res:
            path = f"{base}.network"
            network = self.obj(res["network"], path)
            self.ints(network, path, ("classID",), _UINT32)
            if "priorities" in network:
                for i, item in enumerate(self.array(network["priorities"],
                                                    f"{path}.priorities")):
                    entry = f"{path}.priorities[{i}]"
                    prio = self.obj(item, entry)
                    self.string(self.required(prio, "name", entry), f"{entry}.name")
                    self.integer(self.required(prio, "priority", entry), f"{entry}.priority",
                                 _UINT32)
        if "rdma" in res:
            for device, item in self.obj(res["rdma"], f"{base}.rdma").items():
                path = f"{base}.rdma.{device}"
                self.ints(self.obj(item, path), path, ("hcaHandles", "hcaObjects"), _UINT32)
        if "unified" in res:
            self.string_map(res["unified"], f"{base}.unified")

    def block_io(self, blkio: dict[str, Any]) -> None:
        base = "linux.resources.blockIO"
        self.ints(blkio, base, ("weight", "leafWeight"), _UINT16)
        lists = {"weightDevice": ("weight", "leafWeight"), "throttleReadBpsDevice": ("rate",),
                 "throttleWriteBpsDevice": ("rate",), "throttleReadIOPSDevice": ("rate",),
                 "throttleWriteIOPSDevice": ("rate",)}
        for name, fields in lists.items():
            if name not in blkio:
                continue
            for i, item in enumerate(self.array(blkio[name], f"{base}.{name}")):
                path = f"{base}.{name}[{i}]"
                device = self.obj(item, path)
                for number in ("major", "minor"):
                    self.integer(self.required(device, number, path), f"{path}.{number}",
                                 (0, _INT64[1]))
                self.ints(device, path, fields, _UINT16 if name == "weightDevice" else _UINT64)

    def sysctl(self, sysctls: dict[str, Any]) -> None:
        for key, value in sysctls.items():
            path = f"linux.sysctl.{key}"
            # "net/ipv4/conf/eth0.1/forwarding" spells the key with slashes, so that a
            # dot can be part of a name; the dotted form is what the rules below use.
            parts = key.split("/") if "/" in key else key.split(".")
            if any(part in ("", ".", "..") or "\0" in part for part in parts):
                raise self.fail(path, "is not a valid sysctl name")
            name = ".".join(parts)
            if name.startswith(_IPC_SYSCTL_PREFIXES):
                needed = "ipc"
            elif name.startswith("net."):
                needed = "network"
            elif name in _UTS_SYSCTLS:
                needed = "uts"
                other = _UTS_SYSCTLS[name]
                if self.config.get(other) and self.config[other] != value:
                    raise self.fail(path, f"conflicts with {other} "
                                          f"{json.dumps(self.config[other])}")
            else:
                raise self.fail(path, f"sysctl {name} is not in a separate kernel namespace")
            if needed not in self.namespaces:
                raise self.fail(path, f'sysctl {name} needs its own {needed} namespace (add '
                                      f'{{"type": "{needed}"}} to linux.namespaces)')


def validate(config: dict[str, Any], bundle: str, *,
             require_process: bool = True) -> list[str]:
    """Check a parsed config.json of the bundle at ``bundle``; return warnings.

    Raises :class:`InvalidArgument` for the first problem, naming the field. ``root.path``
    is resolved against ``bundle`` and must be a directory; namespace paths must exist.
    ``require_process`` is False for callers that never start the container's process.
    """
    check = _Check(config, bundle)
    check.run(require_process)
    return check.warnings
