#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: container_exec
short_description: Run a command in a running container of a Longboat engine
version_added: 0.1.0
description:
  - Runs a command in a container (C(docker exec)) and returns its output and exit
    code. Like M(ansible.builtin.command), it always reports a change; use
    C(changed_when) to say what counts as one.
author: Longboat contributors (@longboat)
extends_documentation_fragment:
  - longboat.core.engine_options
  - longboat.core.engine_options.attributes
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: none
    details: What a command would change cannot be known without running it.
  diff_mode:
    support: none
options:
  container:
    description: The container's name or ID.
    type: str
    required: true
  argv:
    description: The command as a list (not split again). One of O(argv) and O(command).
    type: list
    elements: str
  command:
    description: The command as a string, split the way a shell would (not run in one).
    type: str
  chdir:
    description: The working directory of the command.
    type: str
  env:
    description: Environment variables for the command.
    type: dict
  user:
    description: The user to run as (C(NAME|UID[:GROUP|GID])).
    type: str
  stdin:
    description: Text to send to the command's standard input.
    type: str
  stdin_add_newline:
    description: End O(stdin) with a newline.
    type: bool
    default: true
  strip_empty_ends:
    description: Strip empty lines from the end of stdout and stderr.
    type: bool
    default: true
  tty:
    description: Run with a terminal (stdout and stderr then come together).
    type: bool
    default: false
  detach:
    description: Start the command and return without waiting for it.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Ask the web container for its config
  longboat.core.container_exec:
    container: web
    argv: [cat, /etc/httpd.conf]
  register: conf

- name: Run a migration, a change only when it says so
  longboat.core.container_exec:
    container: api
    command: /app/migrate --apply
  register: migrate
  changed_when: "'applied' in migrate.stdout"
'''

RETURN = r'''
stdout:
  description: What the command wrote to its standard output.
  returned: success and not detached
  type: str
stderr:
  description: What the command wrote to its standard error.
  returned: success and not detached
  type: str
rc:
  description: The command's exit code.
  returned: success and not detached
  type: int
  sample: 0
exec_id:
  description: The exec's ID.
  returned: when detached
  type: str
'''

import shlex

from ansible.module_utils.common.text.converters import to_bytes, to_text

from ansible_collections.longboat.core.plugins.module_utils.common import new_module, run
from ansible_collections.longboat.core.plugins.module_utils.execs import exec_run


def main():
    module = new_module(dict(
        container=dict(type="str", required=True),
        argv=dict(type="list", elements="str"),
        command=dict(type="str"),
        chdir=dict(type="str"),
        env=dict(type="dict"),
        user=dict(type="str"),
        stdin=dict(type="str"),
        stdin_add_newline=dict(type="bool", default=True),
        strip_empty_ends=dict(type="bool", default=True),
        tty=dict(type="bool", default=False),
        detach=dict(type="bool", default=False),
    ), supports_check_mode=False, mutually_exclusive=[("argv", "command")],
        required_one_of=[("argv", "command")])
    params = module.params
    argv = params["argv"] if params["argv"] is not None else shlex.split(params["command"])
    env = dict((str(k), str(v)) for k, v in (params["env"] or {}).items())

    def execute(engine):
        if params["detach"]:
            config = {"Cmd": argv, "Env": ["%s=%s" % i for i in sorted(env.items())],
                      "User": params["user"] or "", "WorkingDir": params["chdir"] or ""}
            exec_id = engine.exec_create(params["container"], config)["Id"]
            engine.exec_start(exec_id, detach=True)
            return dict(changed=True, exec_id=exec_id)
        stdin = None
        if params["stdin"] is not None:
            stdin = to_bytes(params["stdin"] + ("\n" if params["stdin_add_newline"] else ""))
        code, out, err = exec_run(engine, params["container"], argv, stdin=stdin, env=env,
                                  user=params["user"], workdir=params["chdir"],
                                  tty=params["tty"])
        stdout, stderr = to_text(out, errors="surrogate_or_replace"), \
            to_text(err, errors="surrogate_or_replace")
        if params["strip_empty_ends"]:
            stdout, stderr = stdout.rstrip("\r\n"), stderr.rstrip("\r\n")
        result = dict(changed=True, stdout=stdout, stderr=stderr, rc=code)
        if code != 0:
            module.fail_json(msg="the command exited %d" % code, **result)
        return result

    run(module, "exec in %s" % params["container"], execute)


if __name__ == "__main__":
    main()
