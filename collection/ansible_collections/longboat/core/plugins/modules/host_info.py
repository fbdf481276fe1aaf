#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: host_info
short_description: Facts about a Longboat engine and what it holds
version_added: 0.1.0
description:
  - Returns the engine's C(/info) and C(/version), and on request lists of its
    containers, images, networks and volumes, and its disk usage. Changes nothing.
  - Fails when no engine answers, so it also serves as a check that the engine is up.
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
  containers:
    description: List the containers (all, running or not).
    type: bool
    default: false
  containers_filters:
    description: Filters for the containers, as C(docker ps --filter) (for example C(status=running)).
    type: dict
  images:
    description: List the images.
    type: bool
    default: false
  images_filters:
    description: Filters for the images (for example C(dangling=true)).
    type: dict
  networks:
    description: List the networks.
    type: bool
    default: false
  networks_filters:
    description: Filters for the networks.
    type: dict
  volumes:
    description: List the volumes.
    type: bool
    default: false
  volumes_filters:
    description: Filters for the volumes.
    type: dict
  disk_usage:
    description: Include the engine's disk usage (C(/system/df)).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Is the engine up, and what runs?
  longboat.core.host_info:
    containers: true
    containers_filters:
      status: running
  register: engine

- name: Show the running containers' names
  ansible.builtin.debug:
    msg: "{{ engine.containers | map(attribute='Names') | list }}"
'''

RETURN = r'''
host_info:
  description: The engine's C(GET /info).
  returned: always
  type: dict
  sample: {"Name": "node1", "ServerVersion": "0.1.0", "Containers": 3}
version:
  description: The engine's C(GET /version).
  returned: always
  type: dict
  sample: {"ApiVersion": "1.41", "Version": "0.1.0"}
containers:
  description: The containers, as C(GET /containers/json) lists them.
  returned: when O(containers) is true
  type: list
  elements: dict
images:
  description: The images, as C(GET /images/json) lists them.
  returned: when O(images) is true
  type: list
  elements: dict
networks:
  description: The networks, as C(GET /networks) lists them.
  returned: when O(networks) is true
  type: list
  elements: dict
volumes:
  description: The volumes, as C(GET /volumes) lists them.
  returned: when O(volumes) is true
  type: list
  elements: dict
disk_usage:
  description: The engine's C(GET /system/df).
  returned: when O(disk_usage) is true
  type: dict
'''

from ansible_collections.longboat.core.plugins.module_utils.common import new_module, run


def main():
    module = new_module(dict(
        containers=dict(type="bool", default=False),
        containers_filters=dict(type="dict"),
        images=dict(type="bool", default=False),
        images_filters=dict(type="dict"),
        networks=dict(type="bool", default=False),
        networks_filters=dict(type="dict"),
        volumes=dict(type="bool", default=False),
        volumes_filters=dict(type="dict"),
        disk_usage=dict(type="bool", default=False),
    ), supports_check_mode=True)
    params = module.params

    def gather(engine):
        result = dict(changed=False, host_info=engine.info(), version=engine.version())
        if params["containers"]:
            result["containers"] = engine.containers(all=True,
                                                     filters=params["containers_filters"])
        if params["images"]:
            result["images"] = engine.images(filters=params["images_filters"])
        if params["networks"]:
            result["networks"] = engine.networks(filters=params["networks_filters"])
        if params["volumes"]:
            result["volumes"] = engine.volumes(filters=params["volumes_filters"])
        if params["disk_usage"]:
            result["disk_usage"] = engine.df()
        return result

    run(module, "host_info", gather)


if __name__ == "__main__":
    main()
