"""The OCI runtimes the monitor can run containers with: ours, in-process (a fork per
container), or any runc-compatible command line (runc, crun) named by the daemon's
``--default-runtime`` or a container's ``HostConfig.Runtime``.

Both offer what the monitor uses: create with given stdio (and the terminal's master
when the process has one), start, kill, delete, pause, resume, update, state, exec.
A command-line runtime's container init is reparented to the monitor (a child
subreaper) when ``create`` returns, as with ours.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile

from longboat.errors import Conflict, InvalidArgument, LongboatError, NotFound, SystemFault
from longboat.oci.container import Created, Executed, Runtime, Stdio

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

BUILTIN = "longboat"


class CommandLineRuntime:
    """runc's command line, driven as containerd drives it."""

    def __init__(self, binary: str, root: str) -> None:
        path = shutil.which(binary)
        if path is None:
            raise InvalidArgument(f"runtime {binary!r} is not installed")
        self.binary = path
        self.root = root

    def _run(self, *args: str, stdio: Stdio | None = None, check: bool = True
             ) -> subprocess.CompletedProcess[bytes]:
        """Run the runtime. With ``stdio`` its descriptors are the container's (runc
        hands its own stdio to the container), so its errors are read from ``--log``."""
        with tempfile.NamedTemporaryFile(prefix="lb-runtime-", suffix=".log") as log:
            if stdio is None:
                fds: tuple[Any, Any, Any] = (subprocess.DEVNULL, subprocess.PIPE,
                                             subprocess.DEVNULL)
            else:
                fds = (_or_null(stdio[0]), _or_null(stdio[1]), _or_null(stdio[2]))
            result = subprocess.run([self.binary, "--root", self.root, "--log", log.name,
                                     "--log-format", "json", *args], stdin=fds[0],
                                    stdout=fds[1], stderr=fds[2], check=False)
            if not check or result.returncode == 0:
                return result
            text = _last_error(log.read().decode(errors="replace")) or \
                f"exit status {result.returncode}"
        if "does not exist" in text or "not exist" in text:
            raise NotFound(text)
        if "not running" in text or "is not stopped" in text or "already" in text:
            raise Conflict(text)
        raise SystemFault(f"{os.path.basename(self.binary)}: {text}")

    def _console(self) -> tuple[socket.socket, str, str]:
        directory = tempfile.mkdtemp(prefix="lb-console-")
        path = os.path.join(directory, "console.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        return server, path, directory

    def _receive_master(self, server: socket.socket, directory: str) -> int:
        from longboat.oci import console

        try:
            server.settimeout(10)
            conn, _ = server.accept()
            try:
                return console.receive_master(conn)
            finally:
                conn.close()
        finally:
            server.close()
            shutil.rmtree(directory, ignore_errors=True)

    def create(self, container_id: str, bundle: str, *, stdio: Stdio | None = None
               ) -> Created:
        with open(os.path.join(bundle, "config.json")) as f:
            terminal = bool(json.load(f)["process"].get("terminal"))
        pid_file = os.path.join(bundle, f".{container_id}.pid")
        args = ["create", "--bundle", bundle, "--pid-file", pid_file]
        server = None
        if terminal:
            server, path, directory = self._console()
            args += ["--console-socket", path]
        try:
            self._run(*args, container_id, stdio=stdio)
        except BaseException:
            if server is not None:
                server.close()
                shutil.rmtree(directory, ignore_errors=True)
            raise
        master = self._receive_master(server, directory) if server is not None else None
        with open(pid_file) as f:
            pid = int(f.read().strip())
        os.unlink(pid_file)
        return Created(pid, [], master)

    def start(self, container_id: str) -> list[str]:
        self._run("start", container_id)
        return []

    def kill(self, container_id: str, sig: str | int = "SIGTERM", *,
             all_processes: bool = False) -> None:
        self._run("kill", *(["--all"] if all_processes else []), container_id, str(sig))

    def delete(self, container_id: str, *, force: bool = False) -> list[str]:
        self._run("delete", *(["--force"] if force else []), container_id)
        return []

    def pause(self, container_id: str) -> None:
        self._run("pause", container_id)

    def resume(self, container_id: str) -> None:
        self._run("resume", container_id)

    def update(self, container_id: str, resources: dict[str, Any]) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(resources, f)
            f.flush()
            self._run("update", "--resources", f.name, container_id)

    def exists(self, container_id: str) -> bool:
        return os.path.isdir(os.path.join(self.root, container_id))

    def state(self, container_id: str) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self._run("state", container_id).stdout)
        state["oomKilled"] = _oom_killed(state.get("bundle", ""))
        return state

    def exec(self, container_id: str, spec: dict[str, Any], *, stdio: Stdio | None = None
             ) -> Executed:
        with tempfile.TemporaryDirectory(prefix="lb-exec-") as tmp:
            process = os.path.join(tmp, "process.json")
            with open(process, "w") as f:
                json.dump(spec, f)
            pid_file = os.path.join(tmp, "pid")
            args = ["exec", "--detach", "--pid-file", pid_file, "--process", process]
            server = None
            if spec.get("terminal"):
                server, path, directory = self._console()
                args += ["--tty", "--console-socket", path]
            try:
                self._run(*args, container_id, stdio=stdio)
            except BaseException:
                if server is not None:
                    server.close()
                    shutil.rmtree(directory, ignore_errors=True)
                raise
            master = self._receive_master(server, directory) if server is not None else None
            with open(pid_file) as f:
                return Executed(int(f.read().strip()), master)


def _or_null(fd: int | None) -> int:
    return subprocess.DEVNULL if fd is None else fd


def _last_error(log: str) -> str:
    """The last error message of a runc-style JSON log."""
    message = ""
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("error", "fatal"):
            message = str(entry.get("msg") or message)
    return message


def _oom_killed(bundle: str) -> bool:
    try:
        with open(os.path.join(bundle, "config.json")) as f:
            path = json.load(f)["linux"]["cgroupsPath"]
        from longboat.cgroups import open_cgroup

        cgroup = open_cgroup(path)
        return cgroup.exists() and cgroup.oom_kills() > 0
    except (OSError, ValueError, KeyError, LongboatError):
        return False


class BuiltinRuntime(Runtime):
    """Ours, as a library; the same interface as :class:`CommandLineRuntime`."""

    def exists(self, container_id: str) -> bool:
        return container_id in self.store.ids()


class Runtimes:
    """The runtimes by name; ``longboat`` is ours, anything else a command line."""

    def __init__(self, builtin_root: str) -> None:
        self.builtin_root = builtin_root   # other runtimes keep theirs beside it
        self.loaded: dict[str, BuiltinRuntime | CommandLineRuntime] = {}

    def get(self, name: str | None) -> BuiltinRuntime | CommandLineRuntime:
        name = name or BUILTIN
        if name not in self.loaded:
            if name == BUILTIN:
                self.loaded[name] = BuiltinRuntime(self.builtin_root)
            elif name in ("runc", "crun") or os.path.isabs(name):
                root = f"{self.builtin_root}-{os.path.basename(name)}"
                self.loaded[name] = CommandLineRuntime(name, root)
            else:
                raise InvalidArgument(f"unknown runtime specified {name}")
        return self.loaded[name]
