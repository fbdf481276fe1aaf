#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: login
short_description: Log in to (or out of) a registry for a Longboat engine's pulls and pushes
version_added: 0.1.0
description:
  - Checks the credentials with the registry through the engine (C(POST /auth)) and
    keeps them as C(longboat login) does, in O(config_path) (Docker's C(config.json)
    format, mode 0600), from where the C(image) and C(container) modules send them.
  - Credentials already saved are not checked again unless O(reauthorize).
author: Longboat contributors (@longboat)
extends_documentation_fragment:
  - longboat.core.engine_options
  - longboat.core.engine_options.attributes
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  registry_url:
    description: The registry (C(host[:port])); Docker Hub by default.
    type: str
    default: https://index.docker.io/v1/
    aliases: [registry, url]
  username:
    description: The user name. Required with O(state=present).
    type: str
  password:
    description: The password or token. Required with O(state=present).
    type: str
  state:
    description: V(present) logs in, V(absent) forgets the saved credentials.
    type: str
    default: present
    choices: [present, absent]
  reauthorize:
    description: Check the credentials with the registry even when they are saved already.
    type: bool
    default: false
  config_path:
    description: Where the credentials are kept.
    type: path
    default: ~/.longboat/config.json
    aliases: [dockercfg_path]
'''

EXAMPLES = r'''
- name: Log in to the local registry
  longboat.core.login:
    registry_url: localhost:5000
    username: deploy
    password: "{{ vault_registry_password }}"

- name: Log out
  longboat.core.login:
    registry_url: localhost:5000
    state: absent
'''

RETURN = r'''
login_result:
  description: The engine's answer to C(POST /auth) (C(Status), C(IdentityToken)); empty
    when nothing was checked.
  returned: when O(state=present)
  type: dict
  sample: {"Status": "Login Succeeded"}
'''

from ansible_collections.longboat.core.plugins.module_utils import auth_config
from ansible_collections.longboat.core.plugins.module_utils.common import new_module, run


def main():
    module = new_module(dict(
        registry_url=dict(type="str", default=auth_config.HUB_KEY, aliases=["registry", "url"]),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        reauthorize=dict(type="bool", default=False),
        config_path=dict(type="path", default="~/.longboat/config.json",
                         aliases=["dockercfg_path"]),
    ), supports_check_mode=True, required_if=[("state", "present", ["username", "password"])])
    params = module.params
    path = params["config_path"]
    registry = params["registry_url"]
    key = auth_config.config_key(registry)

    def login(engine):
        saved = auth_config.get(path, registry)
        result = dict(changed=False)
        if params["state"] == "absent":
            if saved is not None:
                result["changed"] = True
                if not module.check_mode:
                    auth_config.remove(path, registry)
            if module._diff:
                result["diff"] = dict(before={"logged_in": saved is not None, "registry": key},
                                      after={"logged_in": False, "registry": key})
            return result
        wanted = (params["username"], params["password"])
        result["login_result"] = {}
        if saved != wanted or params["reauthorize"]:
            result["login_result"] = engine.login(params["username"], params["password"],
                                                  registry)
        if saved != wanted:
            result["changed"] = True
            if not module.check_mode:
                auth_config.put(path, registry, *wanted)
        if module._diff:
            result["diff"] = dict(
                before={"logged_in": saved is not None, "registry": key,
                        "username": saved[0] if saved else None},
                after={"logged_in": True, "registry": key, "username": wanted[0]})
        return result

    run(module, "login to %s" % registry, login)


if __name__ == "__main__":
    main()
