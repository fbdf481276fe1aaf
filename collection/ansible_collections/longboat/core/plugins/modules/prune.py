#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: prune
short_description: Remove unused containers, images, networks, volumes and build cache
version_added: 0.1.0
description:
  - Prunes what is asked for, as C(docker system prune) does, and reports a change when
    anything was removed.
author: Longboat contributors (@longboat)
extends_documentation_fragment:
  - longboat.core.engine_options
  - longboat.core.engine_options.attributes
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: none
    details: The engine has no dry run for prunes.
  diff_mode:
    support: none
options:
  containers:
    description: Remove stopped containers.
    type: bool
    default: false
  containers_filters:
    description: Filters for the containers (for example C(until=24h), C(label=a=b)).
    type: dict
  images:
    description: Remove dangling images (all unused ones with the filter C(dangling=false)).
    type: bool
    default: false
  images_filters:
    description: Filters for the images.
    type: dict
  networks:
    description: Remove networks no container uses.
    type: bool
    default: false
  networks_filters:
    description: Filters for the networks.
    type: dict
  volumes:
    description: Remove volumes no container uses.
    type: bool
    default: false
  volumes_filters:
    description: Filters for the volumes.
    type: dict
  builder_cache:
    description: Remove the builder's cache.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Clean up after a deploy
  longboat.core.prune:
    containers: true
    images: true
    images_filters:
      dangling: true
'''

RETURN = r'''
containers:
  description: IDs of the removed containers.
  returned: when O(containers) is true
  type: list
  elements: str
images:
  description: What the image prune removed (C(Untagged)/C(Deleted) entries).
  returned: when O(images) is true
  type: list
  elements: dict
networks:
  description: Names of the removed networks.
  returned: when O(networks) is true
  type: list
  elements: str
volumes:
  description: Names of the removed volumes.
  returned: when O(volumes) is true
  type: list
  elements: str
builder_cache_reclaimed:
  description: Bytes the builder's cache prune freed.
  returned: when O(builder_cache) is true
  type: int
space_reclaimed:
  description: Bytes freed, summed over everything pruned.
  returned: always
  type: int
  sample: 1048576
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
        builder_cache=dict(type="bool", default=False),
    ), supports_check_mode=False)
    params = module.params

    def prune(engine):
        result = dict(changed=False, space_reclaimed=0)

        def count(answer, key, name):
            items = answer.get(key) or []
            result[name] = items
            result["space_reclaimed"] += int(answer.get("SpaceReclaimed") or 0)
            if items or answer.get("SpaceReclaimed"):
                result["changed"] = True

        if params["containers"]:
            count(engine.prune_containers(filters=params["containers_filters"]),
                  "ContainersDeleted", "containers")
        if params["images"]:
            count(engine.prune_images(filters=params["images_filters"]),
                  "ImagesDeleted", "images")
        if params["networks"]:
            count(engine.prune_networks(filters=params["networks_filters"]),
                  "NetworksDeleted", "networks")
        if params["volumes"]:
            count(engine.prune_volumes(filters=params["volumes_filters"]),
                  "VolumesDeleted", "volumes")
        if params["builder_cache"]:
            answer = engine.prune_build_cache()
            result["builder_cache_reclaimed"] = int(answer.get("SpaceReclaimed") or 0)
            result["space_reclaimed"] += result["builder_cache_reclaimed"]
            if answer.get("CachesDeleted"):
                result["changed"] = True
        return result

    run(module, "prune", prune)


if __name__ == "__main__":
    main()
