#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: network
short_description: Manage networks of a Longboat engine
version_added: 0.1.0
description:
  - Create or remove a network, and connect containers to it.
  - A network's settings cannot change in place; a difference in any option set in the
    task removes the network and creates it again, reconnecting the containers that
    were on it (which needs O(force) while containers are connected).
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
    description: The network's name.
    type: str
    required: true
    aliases: [network_name]
  state:
    description: Whether the network exists.
    type: str
    default: present
    choices: [present, absent]
  driver:
    description: The network driver.
    type: str
    default: bridge
  driver_options:
    description: Options of the driver (C(com.docker.network.bridge.name), ...).
    type: dict
  ipam_driver:
    description: The IPAM driver.
    type: str
  ipam_config:
    description: Address pools. Only the fields given are compared.
    type: list
    elements: dict
    suboptions:
      subnet:
        description: The subnet, in CIDR notation.
        type: str
      gateway:
        description: The gateway's address.
        type: str
      iprange:
        description: The range containers get addresses from, in CIDR notation.
        type: str
      aux_addresses:
        description: Addresses the IPAM must not give, a dict of name to address.
        type: dict
  internal:
    description: No way out of the network.
    type: bool
  attachable:
    description: Standalone containers may attach (swarm networks).
    type: bool
  enable_ipv6:
    description: Give containers IPv6 addresses too.
    type: bool
  labels:
    description: Labels of the network.
    type: dict
  connected:
    description:
      - Containers (names or IDs) that must be connected to the network.
      - Containers connected but not listed are disconnected, unless O(appends).
    type: list
    elements: str
    aliases: [containers]
  appends:
    description: Leave containers that are connected but not in O(connected) alone.
    type: bool
    default: false
  force:
    description:
      - Disconnect containers when the network must be removed (O(state=absent) or a
        recreate).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: An app network with a fixed subnet
  longboat.core.network:
    name: app
    ipam_config:
      - subnet: 172.30.0.0/24
        gateway: 172.30.0.1
    labels:
      tier: backend

- name: Add a container without disconnecting the others
  longboat.core.network:
    name: app
    connected: [worker]
    appends: true

- name: An internal network for the databases
  longboat.core.network:
    name: data
    internal: true

- name: Gone, disconnecting whatever is on it
  longboat.core.network:
    name: old
    state: absent
    force: true
'''

RETURN = r'''
network:
  description: The network as the engine inspects it; empty when absent.
  returned: success
  type: dict
  sample: {"Name": "app", "Id": "0f3a...", "Driver": "bridge"}
actions:
  description: What was done (or would be in check mode).
  returned: success
  type: list
  elements: str
  sample: ["created", "connected web"]
differences:
  description: The options that differed, with the wanted and active values.
  returned: success
  type: list
  elements: dict
'''

from ansible_collections.longboat.core.plugins.module_utils.common import (
    new_module, run)
from ansible_collections.longboat.core.plugins.module_utils.compare import (
    ComparisonError, resolve_comparisons)
from ansible_collections.longboat.core.plugins.module_utils.network_spec import (
    NETWORK_OPTIONS, connected_names, connection_changes, network_body,
    network_differences, wanted_network)

ARGUMENTS = dict(
    name=dict(type="str", required=True, aliases=["network_name"]),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    driver=dict(type="str", default="bridge"),
    driver_options=dict(type="dict"),
    ipam_driver=dict(type="str"),
    ipam_config=dict(type="list", elements="dict", options=dict(
        subnet=dict(type="str"), gateway=dict(type="str"), iprange=dict(type="str"),
        aux_addresses=dict(type="dict"))),
    internal=dict(type="bool"),
    attachable=dict(type="bool"),
    enable_ipv6=dict(type="bool"),
    labels=dict(type="dict"),
    connected=dict(type="list", elements="str", aliases=["containers"]),
    appends=dict(type="bool", default=False),
    force=dict(type="bool", default=False),
)


class NetworkManager:
    def __init__(self, module, engine):
        self.module = module
        self.engine = engine
        self.params = module.params
        self.check = module.check_mode
        self.actions = []

    def act(self, text, function, *args, **kwargs):
        self.actions.append(text)
        if not self.check:
            return function(*args, **kwargs)
        return None

    def remove(self, network):
        names = connected_names(network)
        if names and not self.params["force"]:
            self.module.fail_json(
                msg="network %s has containers connected (%s): set force to disconnect "
                    "them" % (self.params["name"], ", ".join(names)))
        for name in names:
            self.act("disconnected %s" % name, self.engine.disconnect_network,
                     network["Id"], name, force=True)
        self.act("removed", self.engine.remove_network, network["Id"])
        return names

    def run(self):
        params = self.params
        name = params["name"]
        network = self.engine.find_network(name)
        before = {"exists": network is not None}
        differences = []
        if params["state"] == "absent":
            if network is not None:
                self.remove(network)
            return self.result({}, before, {"exists": False}, differences)
        wanted = wanted_network(params)
        methods = resolve_comparisons(NETWORK_OPTIONS, None)
        reconnect = []
        recreated = False
        if network is not None:
            found = network_differences(wanted, network, methods)
            differences = found.as_list()
            if found:
                old, new = found.before_after()
                before.update(old)
                reconnect = self.remove(network)
                recreated = True
                network = None
                self.actions[-1] = "recreated: %s" % ", ".join(found.names)
            else:
                new = {}
        else:
            new = {}
        if network is None:
            created = self.act("created", self.engine.create_network,
                               network_body(name, wanted))
            if recreated:
                self.actions.pop()
            network = self.engine.inspect_network(created["Id"]) if created else None
            for container in reconnect:
                if params["connected"] is None or container in params["connected"] or \
                        params["appends"]:
                    self.act("connected %s" % container, self.engine.connect_network,
                             created["Id"] if created else name, container)
        connected = connected_names(network) if network is not None else list(
            c for c in reconnect)
        attach, detach = connection_changes(params["connected"], connected,
                                            params["appends"])
        for container in attach:
            self.act("connected %s" % container, self.engine.connect_network,
                     network["Id"] if network else name, container)
        for container in detach:
            self.act("disconnected %s" % container, self.engine.disconnect_network,
                     network["Id"] if network else name, container, force=True)
        if network is not None and not self.check:
            network = self.engine.inspect_network(network["Id"])
        after = dict(new, exists=True)
        if attach or detach:
            before["connected"] = connected
            after["connected"] = sorted(set(connected) - set(detach) | set(attach))
        return self.result(network or {}, before, after, differences)

    def result(self, network, before, after, differences):
        result = dict(changed=bool(self.actions), actions=self.actions, network=network,
                      differences=differences)
        if self.module._diff:
            result["diff"] = dict(before=before, after=after)
        return result


def main():
    module = new_module(ARGUMENTS, supports_check_mode=True)

    def manage(engine):
        try:
            return NetworkManager(module, engine).run()
        except ComparisonError as exc:
            module.fail_json(msg=str(exc))

    run(module, "network %s" % module.params["name"], manage)


if __name__ == "__main__":
    main()
