#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: image
short_description: Pull, build, load, tag, push and remove images of a Longboat engine
version_added: 0.1.0
description:
  - Make sure an image is on the engine (pulled, built from a context directory, loaded
    from an archive, or already there), optionally tagged into another repository and
    pushed; or make sure it is gone.
  - An image that is already present is not pulled, built or loaded again unless
    O(force_source) is set; then the module reports a change only when the image ID
    changed.
author: Longboat contributors (@longboat)
extends_documentation_fragment:
  - longboat.core.engine_options
  - longboat.core.engine_options.attributes
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: partial
    details: In check mode nothing is pulled, built, loaded or pushed; an image that
      is present counts as up to date.
  diff_mode:
    support: full
options:
  name:
    description:
      - The image's name, C(REPOSITORY[:TAG]). A tag in the name wins over O(tag).
      - With O(state=absent) also an image ID.
    type: str
    required: true
  tag:
    description: The tag, when O(name) has none.
    type: str
    default: latest
  state:
    description: Whether the image is on the engine.
    type: str
    default: present
    choices: [present, absent]
  source:
    description:
      - Where a missing image comes from - V(pull) from its registry, V(build) from
        O(build.path), V(load) from O(load_path), V(bootstrap) built by the engine from
        what its host has (Longboat's C(POST /images/bootstrap) - C(busybox[:TAG]) from
        Debian's busybox-static, C(debian[:SUITE]) with debootstrap), V(local) must
        already be there.
      - Required with O(state=present).
    type: str
    choices: [pull, build, load, bootstrap, local]
  force_source:
    description: Pull, build or load even when the image is present.
    type: bool
    default: false
  force_tag:
    description: Tag the image as O(repository) even when that tag already names it.
    type: bool
    default: false
  force_absent:
    description: With O(state=absent), remove the image even when other tags or
      stopped containers use it.
    type: bool
    default: false
  build:
    description: How to build with O(source=build).
    type: dict
    suboptions:
      path:
        description: The build context, a directory on the managed host.
        type: path
        required: true
      dockerfile:
        description: The Dockerfile, relative to O(build.path).
        type: str
        default: Dockerfile
      args:
        description: Build arguments (C(ARG)), a dict of name to value.
        type: dict
      target:
        description: The stage of a multi-stage Dockerfile to build.
        type: str
      nocache:
        description: Build without the cache.
        type: bool
        default: false
      pull:
        description: Pull newer versions of the base images.
        type: bool
        default: false
      labels:
        description: Labels for the image.
        type: dict
      rm:
        description: Remove intermediate containers.
        type: bool
        default: true
  load_path:
    description: A docker-archive or OCI archive (tar) to load with O(source=load).
    type: path
  repository:
    description:
      - Also tag the image as this C(REPOSITORY[:TAG]) (the tag defaults to O(tag)),
        and push that with O(push).
    type: str
  push:
    description:
      - Push the image (as O(repository) when given) to its registry. Reports a change
        when a layer had to be uploaded.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Pulled if missing
  longboat.core.image:
    name: registry.example.com/tools/jq
    tag: "1.7"
    source: pull

- name: Built from a directory on the host
  longboat.core.image:
    name: app:1.0
    source: build
    build:
      path: /srv/app
      args:
        VERSION: "1.0"
      target: runtime

- name: Loaded from an archive, then pushed to a local registry
  longboat.core.image:
    name: app:1.0
    source: load
    load_path: /tmp/app.tar
    repository: localhost:5000/app:1.0
    push: true

- name: A busybox base image without any registry
  longboat.core.image:
    name: busybox
    source: bootstrap

- name: Gone
  longboat.core.image:
    name: app:0.9
    state: absent
'''

RETURN = r'''
image:
  description: The image as the engine inspects it; empty when absent.
  returned: success
  type: dict
  sample: {"Id": "sha256:6f3d...", "RepoTags": ["app:1.0"]}
actions:
  description: What was done (or would be in check mode).
  returned: success
  type: list
  elements: str
  sample: ["built app:1.0", "tagged localhost:5000/app:1.0"]
stdout:
  description: The build's or load's output.
  returned: when an image was built or loaded
  type: str
'''

import os
import tarfile
import tempfile

from ansible_collections.longboat.core.plugins.module_utils.auth_config import (
    DEFAULT_PATH, x_registry_auth)
from ansible_collections.longboat.core.plugins.module_utils.build_context import (
    context_files)
from ansible_collections.longboat.core.plugins.module_utils.common import (
    new_module, run)
from ansible_collections.longboat.core.plugins.module_utils.image_ref import (
    full_reference, split_reference)

ARGUMENTS = dict(
    name=dict(type="str", required=True),
    tag=dict(type="str", default="latest"),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    source=dict(type="str", choices=["pull", "build", "load", "bootstrap", "local"]),
    force_source=dict(type="bool", default=False),
    force_tag=dict(type="bool", default=False),
    force_absent=dict(type="bool", default=False),
    build=dict(type="dict", options=dict(
        path=dict(type="path", required=True),
        dockerfile=dict(type="str", default="Dockerfile"),
        args=dict(type="dict"),
        target=dict(type="str"),
        nocache=dict(type="bool", default=False),
        pull=dict(type="bool", default=False),
        labels=dict(type="dict"),
        rm=dict(type="bool", default=True))),
    load_path=dict(type="path"),
    repository=dict(type="str"),
    push=dict(type="bool", default=False),
)


def reference(name, tag):
    """``name`` with ``tag`` unless it has a tag or digest of its own."""
    if "@" in name:
        return name
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else "%s:%s" % (name, tag)


class ImageManager:
    def __init__(self, module, engine):
        self.module = module
        self.engine = engine
        self.params = module.params
        self.check = module.check_mode
        self.actions = []
        self.output = []

    def events(self, stream):
        for event in stream:
            text = event.get("stream") or event.get("status") or ""
            if text:
                self.output.append(text if text.endswith("\n") else text + "\n")
            yield event

    def run(self):
        params = self.params
        ref = reference(params["name"], params["tag"])
        before = self.engine.find_image(ref)
        if params["state"] == "absent":
            if before is not None:
                self.actions.append("removed %s" % ref)
                if not self.check:
                    self.engine.remove_image(ref, force=params["force_absent"])
            return self.result(before, None, {}, ref)
        image = before
        if image is None or params["force_source"]:
            image = self.obtain(ref, before)
        if params["repository"]:
            image = self.tag(ref, image)
        if params["push"]:
            self.push(params["repository"] or ref)
        return self.result(before, image, image, ref)

    def obtain(self, ref, before):
        source = self.params["source"]
        if source == "local":
            if before is None:
                self.module.fail_json(msg="image %s is not on the engine and source is "
                                          "'local': choose source pull, build or load" % ref)
            return before
        if self.check:
            if before is None:
                self.actions.append("%s %s" % (PAST[source], ref))
            return before
        if source == "pull":
            repository, tag = split_reference(ref)
            auth = self.auth(ref)
            for _event in self.events(self.engine.pull(repository, tag, auth=auth)):
                pass
        elif source == "build":
            self.build(ref)
        elif source == "bootstrap":
            for _event in self.events(self.engine.bootstrap_image(ref)):
                pass
        else:
            self.load(ref)
        image = self.engine.find_image(ref)
        if image is None:
            self.module.fail_json(msg="%s did not produce %s" % (PAST[source], ref),
                                  stdout="".join(self.output))
        if before is None or before.get("Id") != image.get("Id"):
            self.actions.append("%s %s" % (PAST[source], ref))
        return image

    def auth(self, ref):
        try:
            return x_registry_auth(DEFAULT_PATH, ref)
        except ValueError as exc:
            self.module.fail_json(msg="registry credentials: %s" % exc)

    def build(self, ref):
        options = self.params["build"]
        if not options:
            self.module.fail_json(msg="source is 'build': set build.path to the context "
                                      "directory")
        path = options["path"]
        dockerfile = options["dockerfile"]
        if not os.path.isdir(path):
            self.module.fail_json(msg="build.path %s is not a directory" % path)
        if not os.path.isfile(os.path.join(path, dockerfile)):
            self.module.fail_json(msg="build: no %s in %s; set build.dockerfile"
                                      % (dockerfile, path))
        import json

        params = {"t": ref, "dockerfile": dockerfile, "target": options.get("target"),
                  "nocache": "1" if options["nocache"] else None,
                  "pull": "1" if options["pull"] else None,
                  "rm": "1" if options["rm"] else "0",
                  "buildargs": json.dumps(dict((k, str(v)) for k, v in
                                               (options.get("args") or {}).items())),
                  "labels": json.dumps(dict((k, str(v)) for k, v in
                                            (options.get("labels") or {}).items()))}
        with tempfile.TemporaryFile() as context:
            with tarfile.open(fileobj=context, mode="w") as tar:
                for relative in context_files(path, dockerfile):
                    tar.add(os.path.join(path, relative), arcname=relative, recursive=False)
            context.seek(0)
            for _event in self.events(self.engine.build(context, params)):
                pass

    def load(self, ref):
        path = self.params["load_path"]
        if not path:
            self.module.fail_json(msg="source is 'load': set load_path to the archive")
        if not os.path.isfile(path):
            self.module.fail_json(msg="load_path %s is not a file" % path)
        with open(path, "rb") as archive:
            for _event in self.events(self.engine.load(archive)):
                pass

    def tag(self, ref, image):
        target = reference(self.params["repository"], split_reference(ref)[1])
        if image is None:       # check mode, not yet obtained
            self.actions.append("tagged %s" % target)
            return image
        existing = self.engine.find_image(target)
        if existing is not None and existing.get("Id") == image.get("Id") and \
                not self.params["force_tag"]:
            return image
        self.actions.append("tagged %s" % target)
        if not self.check:
            repository, tag = split_reference(target)
            self.engine.tag(image["Id"], repository, tag)
            image = self.engine.inspect_image(image["Id"])
        return image

    def push(self, ref):
        ref = full_reference(reference(ref, self.params["tag"]))
        if self.check:
            self.actions.append("pushed %s" % ref)   # cannot know without pushing
            return
        repository, tag = split_reference(ref)
        uploaded = False
        for event in self.events(self.engine.push(repository, tag, auth=self.auth(ref))):
            if event.get("status") == "Pushed":
                uploaded = True
        if uploaded:
            self.actions.append("pushed %s" % ref)

    def result(self, before, after, shown, ref):
        result = dict(changed=bool(self.actions), actions=self.actions,
                      image=shown if shown is not None else (after or {}))
        if self.output:
            result["stdout"] = "".join(self.output)
        if self.module._diff:
            result["diff"] = dict(
                before={"image": ref, "id": (before or {}).get("Id"),
                        "exists": before is not None},
                after={"image": ref, "id": (after or {}).get("Id") if after else
                       ("(new)" if self.actions and self.params["state"] == "present"
                        else None),
                       "exists": self.params["state"] == "present",
                       "actions": self.actions})
        return result


PAST = {"pull": "pulled", "build": "built", "load": "loaded", "bootstrap": "bootstrapped"}


def main():
    module = new_module(ARGUMENTS, supports_check_mode=True,
                        required_if=[("state", "present", ["source"]),
                                     ("source", "build", ["build"]),
                                     ("source", "load", ["load_path"])])
    run(module, "image %s" % module.params["name"],
        lambda engine: ImageManager(module, engine).run())


if __name__ == "__main__":
    main()
