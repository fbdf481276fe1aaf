#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: volume_info
short_description: Inspect a volume of a Longboat engine
version_added: 0.1.0
description:
  - Returns whether the volume exists and, when it does, what the engine's inspect
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
    description: The volume's name or ID.
    type: str
    required: true
'''

EXAMPLES = r'''
- name: Look at the volume
  longboat.core.volume_info:
    name: pgdata
  register: result

- name: Show it
  ansible.builtin.debug:
    var: result.volume
  when: result.exists
'''

RETURN = r'''
exists:
  description: Whether the volume exists.
  returned: always
  type: bool
  sample: true
volume:
  description: The volume as the engine inspects it (C(GET /volumes/{name})); empty if it does not exist.
  returned: always
  type: dict
  sample: {"Name": "pgdata", "Driver": "local"}
'''

from ansible_collections.longboat.core.plugins.module_utils.common import new_module, run


def main():
    module = new_module(dict(name=dict(type="str", required=True)),
                        supports_check_mode=True)

    def inspect(engine):
        found = engine.find_volume(module.params["name"])
        return dict(changed=False, exists=found is not None, volume=found or {})

    run(module, "volume %s" % module.params["name"], inspect)


if __name__ == "__main__":
    main()
