#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: network_info
short_description: Inspect a network of a Longboat engine
version_added: 0.1.0
description:
  - Returns whether the network exists and, when it does, what the engine's inspect
    endpoint says of it. Changes nothing.
author: Longboat contributors (@longboat)
extends_documentation_fragment:
  - longboat.core.engine_options
  - longboat.core.engine_options.attributes
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: This action does not modify state.
  diff_mode:
    support: N/A
    details: This action does not modify state.
options:
  name:
    description: The network's name or ID.
    type: str
    required: true
'''

EXAMPLES = r'''
- name: Look at the network
  longboat.core.network_info:
    name: app
  register: result

- name: Show it
  ansible.builtin.debug:
    var: result.network
  when: result.exists
'''

RETURN = r'''
exists:
  description: Whether the network exists.
  returned: always
  type: bool
  sample: true
network:
  description: The network as the engine inspects it (C(GET /networks/{id})); empty if it does not exist.
  returned: always
  type: dict
  sample: {"Name": "app", "Driver": "bridge"}
'''

from ansible_collections.longboat.core.plugins.module_utils.common import new_module, run


def main():
    module = new_module(dict(name=dict(type="str", required=True)),
                        supports_check_mode=True)

    def inspect(engine):
        found = engine.find_network(module.params["name"])
        return dict(changed=False, exists=found is not None, network=found or {})

    run(module, "network %s" % module.params["name"], inspect)


if __name__ == "__main__":
    main()
