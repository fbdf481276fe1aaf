#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: volume
short_description: Manage volumes of a Longboat engine
version_added: 0.1.0
description:
  - Create or remove a named volume.
  - A volume's settings cannot change in place. When the options set in the task
    differ from the existing volume's, O(recreate) decides - V(never) keeps it (and
    warns), V(options-changed) removes it with its data and creates it again,
    V(always) recreates it on every run.
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
  name:
    description: The volume's name.
    type: str
    required: true
    aliases: [volume_name]
  state:
    description: Whether the volume exists.
    type: str
    default: present
    choices: [present, absent]
  driver:
    description: The volume driver.
    type: str
    default: local
  driver_options:
    description: Options of the driver (for V(local) - C(type), C(device), C(o)).
    type: dict
  labels:
    description: Labels of the volume.
    type: dict
  recreate:
    description: When to remove and create an existing volume again (its data is lost).
    type: str
    default: never
    choices: [always, never, options-changed]
'''

EXAMPLES = r'''
- name: A volume for the database
  longboat.core.volume:
    name: pgdata
    labels:
      backup: daily

- name: A tmpfs-backed volume
  longboat.core.volume:
    name: scratch
    driver_options:
      type: tmpfs
      device: tmpfs
      o: size=64m

- name: Gone
  longboat.core.volume:
    name: old
    state: absent
'''

RETURN = r'''
volume:
  description: The volume as the engine inspects it; empty when absent.
  returned: success
  type: dict
  sample: {"Name": "pgdata", "Driver": "local", "Mountpoint": "/var/lib/longboat/volumes/pgdata/_data"}
actions:
  description: What was done (or would be in check mode).
  returned: success
  type: list
  elements: str
differences:
  description: The options that differed, with the wanted and active values.
  returned: success
  type: list
  elements: dict
'''

from ansible_collections.longboat.core.plugins.module_utils.common import (
    new_module, run)
from ansible_collections.longboat.core.plugins.module_utils.compare import (
    resolve_comparisons)
from ansible_collections.longboat.core.plugins.module_utils.network_spec import (
    VOLUME_OPTIONS, volume_body, volume_differences, wanted_volume)

ARGUMENTS = dict(
    name=dict(type="str", required=True, aliases=["volume_name"]),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    driver=dict(type="str", default="local"),
    driver_options=dict(type="dict"),
    labels=dict(type="dict"),
    recreate=dict(type="str", default="never", choices=["always", "never", "options-changed"]),
)


def manage(module, engine):
    params = module.params
    check = module.check_mode
    name = params["name"]
    volume = engine.find_volume(name)
    actions, differences = [], []
    before, after = {"exists": volume is not None}, {"exists": params["state"] == "present"}
    if params["state"] == "absent":
        if volume is not None:
            actions.append("removed")
            if not check:
                engine.remove_volume(name)
        volume = {}
    else:
        wanted = wanted_volume(params)
        if volume is not None:
            found = volume_differences(wanted, volume, resolve_comparisons(VOLUME_OPTIONS, None))
            differences = found.as_list()
            if found and params["recreate"] == "never":
                module.warn("volume %s differs in %s; it is kept as it is (set recreate to "
                            "'options-changed' to recreate it, losing its data)"
                            % (name, ", ".join(found.names)))
            elif found or params["recreate"] == "always":
                old, new = found.before_after()
                before.update(old)
                after.update(new)
                actions.append("recreated" + (": " + ", ".join(found.names) if found else ""))
                if not check:
                    engine.remove_volume(name)
                volume = None
        if volume is None:
            if not actions:
                actions.append("created")
            if not check:
                engine.create_volume(volume_body(name, wanted))
                volume = engine.inspect_volume(name)
    result = dict(changed=bool(actions), actions=actions, volume=volume or {},
                  differences=differences)
    if module._diff:
        result["diff"] = dict(before=before, after=after)
    return result


def main():
    module = new_module(ARGUMENTS, supports_check_mode=True)
    run(module, "volume %s" % module.params["name"], lambda engine: manage(module, engine))


if __name__ == "__main__":
    main()
