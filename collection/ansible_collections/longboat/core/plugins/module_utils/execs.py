# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Run a process in a container through the API and collect what it wrote: exec
create, a hijacked exec start (stdin in, Docker's 8-byte frames out unless there is a
TTY), exec inspect for the exit code. The container_exec module and the connection
plugin both use it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.longboat.core.plugins.module_utils.api import (
    ClientError, FrameReader)


def exec_run(engine, container, argv, stdin=None, env=None, user=None, workdir=None,
             tty=False, privileged=False):
    """``(exit code, stdout bytes, stderr bytes)`` of ``argv`` run in ``container``."""
    config = {"Cmd": list(argv), "AttachStdout": True, "AttachStderr": True,
              "AttachStdin": stdin is not None, "Tty": bool(tty),
              "Privileged": bool(privileged)}
    if env:
        config["Env"] = ["%s=%s" % (k, v) for k, v in sorted(env.items())]
    if user:
        config["User"] = user
    if workdir:
        config["WorkingDir"] = workdir
    exec_id = engine.exec_create(container, config)["Id"]
    stream = engine.exec_start(exec_id, tty=bool(tty))
    out, err = [], []
    try:
        if stdin is not None:
            stream.sendall(stdin)
            stream.close_write()
        reader = FrameReader()
        while True:
            data = stream.recv()
            if not data:
                break
            if tty:
                out.append(data)
                continue
            for kind, payload in reader.feed(data):
                (err if kind == 2 else out).append(payload)
        if reader.pending:
            raise ClientError("the exec stream ended in the middle of a frame")
    finally:
        stream.close()
    code = engine.exec_inspect(exec_id).get("ExitCode")
    return (-1 if code is None else int(code)), b"".join(out), b"".join(err)
