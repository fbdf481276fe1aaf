#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: image_info
short_description: Inspect images of a Longboat engine
version_added: 0.1.0
description:
  - Returns what the engine's image inspect endpoint says of each named image that
    exists, or of every image when no name is given. Changes nothing.
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
    description:
      - Images to inspect (C(NAME[:TAG]) or IDs); missing ones are left out of the
        result. Without names, every image.
    type: list
    elements: str
'''

EXAMPLES = r'''
- name: Is busybox there?
  longboat.core.image_info:
    name: busybox:latest
  register: result

- name: Fail without it
  ansible.builtin.assert:
    that: result.images | length == 1
'''

RETURN = r'''
images:
  description: The images found, as the engine inspects them (C(GET /images/{name}/json)).
  returned: always
  type: list
  elements: dict
  sample: [{"Id": "sha256:6f3d...", "RepoTags": ["busybox:latest"]}]
'''

from ansible_collections.longboat.core.plugins.module_utils.common import new_module, run


def main():
    module = new_module(dict(name=dict(type="list", elements="str")),
                        supports_check_mode=True)

    def inspect(engine):
        names = module.params["name"]
        if names is None:
            names = [image["Id"] for image in engine.images()]
        images = []
        for name in names:
            found = engine.find_image(name)
            if found is not None:
                images.append(found)
        return dict(changed=False, images=images)

    run(module, "image_info", inspect)


if __name__ == "__main__":
    main()
