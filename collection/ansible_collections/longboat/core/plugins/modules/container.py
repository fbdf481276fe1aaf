#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: container
short_description: Manage containers of a Longboat engine
version_added: 0.1.0
description:
  - Create, recreate, start, stop and remove a container, so that it matches the
    options given.
  - The wanted configuration is compared with the existing container's; a difference
    in any option set in the task recreates the container (see O(comparisons) to
    relax or ignore an option). Options not set in the task are not compared.
  - Networks are connected and disconnected without recreating the container.
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
    description: The container's name.
    type: str
    required: true
  state:
    description:
      - V(present) - the container exists with the wanted configuration; a new one is
        not started, a recreated one is started again if the old one ran.
      - V(started) - it exists and runs.
      - V(healthy) - it runs and its health check reports healthy (waits up to
        O(healthy_wait_timeout) seconds; fails at once when the check reports
        unhealthy, when the container stops, or when it has no health check (none
        in the image nor in O(healthcheck), or C(NONE)), as community.docker's
        docker_container does).
      - V(stopped) - it exists and does not run.
      - V(absent) - it does not exist.
    type: str
    default: started
    choices: [absent, present, started, stopped, healthy]
  image:
    description:
      - The image to run, as C(NAME[:TAG]) or C(NAME@DIGEST); the tag defaults to
        C(latest). Required to create a container.
      - A container whose image ID differs from the image's current ID is recreated
        (unless O(comparisons) sets C(image) to V(ignore)).
    type: str
  pull:
    description:
      - V(missing) pulls the image when the engine does not have it, V(always) pulls
        it every run (a changed image recreates the container), V(never) fails when it
        is missing.
    type: str
    default: missing
    choices: [missing, always, never]
  command:
    description: The command, as a list or a string split the way a shell would.
    type: raw
  entrypoint:
    description: The entrypoint, replacing the image's.
    type: list
    elements: str
  env:
    description: Environment variables. Values must be strings (quote V(yes), V(true)).
    type: dict
  labels:
    description: Labels of the container.
    type: dict
  published_ports:
    description:
      - Ports to publish, as C(docker run -p) - C(CONTAINER_PORT),
        C(HOST_PORT:CONTAINER_PORT), C(IP:HOST_PORT:CONTAINER_PORT), C(IP::CONTAINER_PORT),
        each with an optional C(/udp) or C(/sctp), and port ranges.
    type: list
    elements: str
    aliases: [ports]
  exposed_ports:
    description:
      - Ports to expose without publishing. Compared with V(allow_more_present) by
        default, since the image and O(published_ports) expose ports too.
    type: list
    elements: str
    aliases: [exposed, expose]
  volumes:
    description:
      - Volumes as C(docker run -v) - C(SOURCE:/PATH[:MODE]) (a bind mount when
        SOURCE is an absolute path, else a named volume) or C(/PATH) (an anonymous
        volume).
    type: list
    elements: str
  mounts:
    description: Mounts as C(docker run --mount).
    type: list
    elements: dict
    suboptions:
      target:
        description: The path in the container.
        type: str
        required: true
      source:
        description: The host path (bind) or the volume's name (volume).
        type: str
      type:
        description: The kind of mount.
        type: str
        default: volume
        choices: [bind, volume, tmpfs]
      read_only:
        description: Mount read-only.
        type: bool
        default: false
  network_mode:
    description:
      - V(default) (or V(bridge)), V(host), V(none), C(container:NAME) or a network's
        name. Defaults to the first of O(networks) when those are given.
    type: str
  networks:
    description:
      - Networks to connect the container to. They are connected and disconnected
        without recreating the container. By default other networks the container is
        on are left alone; with C(networks) set to V(strict) in O(comparisons) they are
        disconnected.
    type: list
    elements: dict
    suboptions:
      name:
        description: The network's name or ID.
        type: str
        required: true
      aliases:
        description: DNS names of the container on this network.
        type: list
        elements: str
      ipv4_address:
        description: A fixed IPv4 address on this network.
        type: str
  restart_policy:
    description: What the engine does when the container exits.
    type: str
    choices: ['no', always, on-failure, unless-stopped]
  restart_retries:
    description: How many restarts V(on-failure) allows.
    type: int
  user:
    description: The user (C(NAME|UID[:GROUP|GID])) the command runs as.
    type: str
  working_dir:
    description: The working directory of the command.
    type: str
  hostname:
    description: The container's hostname.
    type: str
  memory:
    description: A memory limit, in bytes or with a unit (V(512m), V(1g)).
    type: str
  cpus:
    description: How many CPUs the container may use (V(1.5)).
    type: float
  privileged:
    description: Run with every capability and device.
    type: bool
  read_only:
    description: Mount the root filesystem read-only.
    type: bool
  init:
    description: Run an init (tini) as PID 1 that reaps zombies.
    type: bool
  tty:
    description: Allocate a terminal.
    type: bool
  interactive:
    description: Keep stdin open.
    type: bool
  auto_remove:
    description: The engine removes the container when it exits.
    type: bool
  capabilities:
    description: Capabilities to add.
    type: list
    elements: str
    aliases: [cap_add]
  cap_drop:
    description: Capabilities to drop.
    type: list
    elements: str
  dns_servers:
    description: DNS servers for the container.
    type: list
    elements: str
  etc_hosts:
    description: Extra C(/etc/hosts) entries, a dict of name to address.
    type: dict
  stop_signal:
    description: The signal that stops the container.
    type: str
  stop_timeout:
    description: Seconds to wait after the stop signal before killing.
    type: int
  healthcheck:
    description: A health check, as a Dockerfile C(HEALTHCHECK).
    type: dict
    suboptions:
      test:
        description:
          - The command - a string runs in a shell (C(CMD-SHELL)), a list is C(CMD) or
            C(CMD-SHELL) followed by arguments, V(NONE) disables the image's check.
        type: raw
      interval:
        description: Time between checks (V(30s), V(1m30s)).
        type: str
      timeout:
        description: How long one check may take.
        type: str
      retries:
        description: Failures in a row before unhealthy.
        type: int
      start_period:
        description: Time to start during which failures do not count.
        type: str
  log_driver:
    description: The log driver.
    type: str
  log_options:
    description: Options of the log driver (V(max-size), V(max-file)).
    type: dict
  sysctls:
    description: Namespaced kernel parameters.
    type: dict
  comparisons:
    description:
      - How to compare each option with the existing container - V(strict) (must be
        equal), V(ignore) (never recreate for it), V(allow_more_present) (lists and
        dicts may hold more than wanted). The key C(*) sets every option at once.
      - Defaults are V(strict), except V(allow_more_present) for O(exposed_ports) and
        O(networks).
    type: dict
  recreate:
    description: Recreate the container even when nothing differs.
    type: bool
    default: false
  restart:
    description: Restart a running container (not a recreated or just started one).
    type: bool
    default: false
  force_kill:
    description: Kill the container instead of stopping it with its stop signal.
    type: bool
    default: false
  keep_volumes:
    description: Keep the container's anonymous volumes when removing it.
    type: bool
    default: true
  healthy_wait_timeout:
    description: Seconds V(healthy) waits for the health check.
    type: int
    default: 300
notes:
  - API 1.41 connects one network at create; further O(networks) are connected before
    the container starts.
'''

EXAMPLES = r'''
- name: A web server on port 8080 of the host
  longboat.core.container:
    name: web
    image: busybox:latest
    command: httpd -f -p 80 -h /srv
    published_ports:
      - "8080:80"
    volumes:
      - /srv/www:/srv:ro
    restart_policy: unless-stopped

- name: Attached to an app network under two names
  longboat.core.container:
    name: api
    image: registry.example.com/api:2.1
    networks:
      - name: app
        aliases: [api, backend]
    env:
      LOG_LEVEL: info
    comparisons:
      labels: allow_more_present   # others add labels; do not recreate for those

- name: Stopped, but kept
  longboat.core.container:
    name: batch
    state: stopped

- name: Gone
  longboat.core.container:
    name: old
    state: absent
'''

RETURN = r'''
container:
  description:
    - The container as the engine inspects it (C(GET /containers/{id}/json)); in check
      mode the existing container. Empty when removed.
  returned: success
  type: dict
  sample: {"Id": "8d3c...", "Name": "/web", "State": {"Status": "running"}}
actions:
  description: What was done (or, in check mode, would be).
  returned: success
  type: list
  elements: str
  sample: ["pulled image busybox:latest", "recreated: published_ports", "started"]
differences:
  description: Each option whose existing value differed, with the wanted and active values.
  returned: success
  type: list
  elements: dict
  sample: [{"parameter": "env", "wanted": {"A": "1"}, "active": {"A": "2"}}]
'''

import time

from ansible_collections.longboat.core.plugins.module_utils.auth_config import (
    DEFAULT_PATH, x_registry_auth)
from ansible_collections.longboat.core.plugins.module_utils.common import (
    new_module, run)
from ansible_collections.longboat.core.plugins.module_utils.compare import (
    ComparisonError, resolve_comparisons)
from ansible_collections.longboat.core.plugins.module_utils.container_spec import (
    OPTIONS, SpecError, actual_networks, actual_values, create_body, endpoint_config,
    network_changes, recreate_differences, wanted_values)
from ansible_collections.longboat.core.plugins.module_utils.image_ref import (
    full_reference, split_reference)

ARGUMENTS = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="started",
               choices=["absent", "present", "started", "stopped", "healthy"]),
    image=dict(type="str"),
    pull=dict(type="str", default="missing", choices=["missing", "always", "never"]),
    command=dict(type="raw"),
    entrypoint=dict(type="list", elements="str"),
    env=dict(type="dict"),
    labels=dict(type="dict"),
    published_ports=dict(type="list", elements="str", aliases=["ports"]),
    exposed_ports=dict(type="list", elements="str", aliases=["exposed", "expose"]),
    volumes=dict(type="list", elements="str"),
    mounts=dict(type="list", elements="dict", options=dict(
        target=dict(type="str", required=True),
        source=dict(type="str"),
        type=dict(type="str", default="volume", choices=["bind", "volume", "tmpfs"]),
        read_only=dict(type="bool", default=False))),
    network_mode=dict(type="str"),
    networks=dict(type="list", elements="dict", options=dict(
        name=dict(type="str", required=True),
        aliases=dict(type="list", elements="str"),
        ipv4_address=dict(type="str"))),
    restart_policy=dict(type="str", choices=["no", "always", "on-failure", "unless-stopped"]),
    restart_retries=dict(type="int"),
    user=dict(type="str"),
    working_dir=dict(type="str"),
    hostname=dict(type="str"),
    memory=dict(type="str"),
    cpus=dict(type="float"),
    privileged=dict(type="bool"),
    read_only=dict(type="bool"),
    init=dict(type="bool"),
    tty=dict(type="bool"),
    interactive=dict(type="bool"),
    auto_remove=dict(type="bool"),
    capabilities=dict(type="list", elements="str", aliases=["cap_add"]),
    cap_drop=dict(type="list", elements="str"),
    dns_servers=dict(type="list", elements="str"),
    etc_hosts=dict(type="dict"),
    stop_signal=dict(type="str"),
    stop_timeout=dict(type="int"),
    healthcheck=dict(type="dict", options=dict(
        test=dict(type="raw"),
        interval=dict(type="str"),
        timeout=dict(type="str"),
        retries=dict(type="int"),
        start_period=dict(type="str"))),
    log_driver=dict(type="str"),
    log_options=dict(type="dict"),
    sysctls=dict(type="dict"),
    comparisons=dict(type="dict"),
    recreate=dict(type="bool", default=False),
    restart=dict(type="bool", default=False),
    force_kill=dict(type="bool", default=False),
    keep_volumes=dict(type="bool", default=True),
    healthy_wait_timeout=dict(type="int", default=300),
)


def status_of(container):
    if not container:
        return "absent"
    return (container.get("State") or {}).get("Status") or "unknown"


def is_running(container):
    return status_of(container) in ("running", "paused", "restarting")


class ContainerManager:
    """One run of the module: find, compare, act (unless in check mode), report."""

    def __init__(self, module, engine):
        self.module = module
        self.engine = engine
        self.params = module.params
        self.check = module.check_mode
        self.actions = []
        self.differences = []
        self.diff_before = {}
        self.diff_after = {}

    def act(self, text, function, *args, **kwargs):
        self.actions.append(text)
        if not self.check:
            return function(*args, **kwargs)
        return None

    # -- the image -----------------------------------------------------------------
    def image(self):
        """The wanted image's inspect (pulled as ``pull`` says), or None in check mode
        when it would be pulled first."""
        ref = full_reference(self.params["image"])
        image = self.engine.find_image(ref)
        policy = self.params["pull"]
        if image is None and policy == "never":
            self.module.fail_json(
                msg="image %s is not on the engine and pull is 'never': load or pull it "
                    "first (longboat.core.image) or set pull to 'missing'" % ref)
        if image is None or policy == "always":
            if self.check:
                if image is None:
                    self.actions.append("pulled image %s" % ref)
                return image
            repository, tag = split_reference(ref)
            try:
                auth = x_registry_auth(DEFAULT_PATH, ref)
            except ValueError as exc:
                self.module.fail_json(msg="registry credentials: %s" % exc)
            for _event in self.engine.pull(repository, tag, auth=auth):
                pass
            pulled = self.engine.inspect_image(ref)
            if image is None or pulled.get("Id") != image.get("Id"):
                self.actions.append("pulled image %s" % ref)
            image = pulled
        return image

    # -- container lifecycle ---------------------------------------------------------
    def remove(self, container):
        self.act("removed", self.engine.remove_container, container["Id"], force=True,
                 volumes=not self.params["keep_volumes"])

    def stop(self, container):
        if self.params["force_kill"]:
            self.act("killed", self.engine.kill, container["Id"])
        else:
            self.act("stopped", self.engine.stop, container["Id"],
                     timeout=self.params["stop_timeout"])

    def create(self, wanted):
        body = create_body(wanted, full_reference(self.params["image"]))
        created = self.act("created", self.engine.create_container, body,
                           name=self.params["name"])
        if created is None:
            return None
        networks = wanted.get("networks") or []
        mode = body["HostConfig"].get("NetworkMode")
        for network in networks:
            if network["name"] != mode:
                self.engine.connect_network(network["name"], created["Id"],
                                            endpoint_config(network))
        return self.engine.inspect_container(created["Id"])

    def wait_healthy(self, container):
        deadline = time.monotonic() + self.params["healthy_wait_timeout"]
        while True:
            current = self.engine.inspect_container(container["Id"])
            health = (current.get("State") or {}).get("Health")
            if not health and is_running(current):
                self.module.fail_json(
                    msg="container %s has no health check to wait for (none in its image "
                        "nor in the healthcheck option, or test NONE): use state started, "
                        "or give it a healthcheck" % self.params["name"], container=current)
            status = (health or {}).get("Status")
            if status == "healthy":
                return current
            if status == "unhealthy":
                log = (health.get("Log") or [{}])[-1]
                self.module.fail_json(
                    msg="container %s is unhealthy: the last check exited %s: %s"
                        % (self.params["name"], log.get("ExitCode"),
                           (log.get("Output") or "").strip()), container=current)
            if not is_running(current):
                self.module.fail_json(msg="container %s stopped while waiting for it to "
                                          "become healthy" % self.params["name"],
                                      container=current)
            if time.monotonic() > deadline:
                self.module.fail_json(
                    msg="container %s was not healthy within %ss (still %s); raise "
                        "healthy_wait_timeout or check its health check"
                        % (self.params["name"], self.params["healthy_wait_timeout"],
                           status), container=current)
            time.sleep(0.5)

    def run(self):
        params = self.params
        state = params["state"]
        try:
            methods = resolve_comparisons(OPTIONS, params["comparisons"])
            wanted = wanted_values(params)
        except (ComparisonError, SpecError) as exc:
            self.module.fail_json(msg=str(exc))
        if methods["image"] not in ("strict", "ignore"):
            self.module.fail_json(msg="comparisons: image is compared 'strict' or 'ignore'")
        container = self.engine.find_container(params["name"])
        self.diff_before = {"exists": container is not None, "status": status_of(container)}
        if state == "absent":
            if container is not None:
                self.remove(container)
            self.diff_after = {"exists": False, "status": "absent"}
            return self.result(None if container is None or not self.check else container)

        image = None
        if params["image"]:
            image = self.image()
        elif container is None:
            self.module.fail_json(msg="container %s does not exist: set image to create it"
                                      % params["name"])
        image_config = None
        if image is not None:
            image_config = image.get("Config")
        elif container is not None:
            found = self.engine.find_image(container.get("Image") or "")
            image_config = (found or {}).get("Config")

        was_running = is_running(container)
        fresh = False        # created (or recreated) in this run
        if container is not None:
            differences = recreate_differences(wanted, actual_values(container, image_config),
                                               methods, image_config)
            if params["image"] and methods["image"] == "strict":
                wanted_id = image.get("Id") if image is not None else "(to be pulled)"
                if wanted_id != container.get("Image"):
                    differences.add("image", wanted_id, container.get("Image"))
            self.differences = differences.as_list()
            if differences or params["recreate"]:
                if not params["image"]:
                    self.module.fail_json(
                        msg="container %s differs in %s and must be recreated: set image"
                            % (params["name"], ", ".join(differences.names)))
                before, after = differences.before_after()
                self.diff_before.update(before)
                self.diff_after.update(after)
                if is_running(container):
                    self.stop(container)
                self.remove(container)
                self.actions[-1] = "recreated: %s" % (
                    ", ".join(differences.names) or "recreate requested")
                container = self.create(wanted)
                fresh = True
            else:
                self.sync_networks(container, wanted, methods)
        else:
            container = self.create(wanted)
            fresh = True

        running = False if fresh else is_running(container)
        if state in ("started", "healthy") or (state == "present" and fresh and was_running):
            if not running:
                self.act("started", self.engine.start,
                         container["Id"] if container else params["name"])
            elif params["restart"]:
                self.act("restarted", self.engine.restart, container["Id"],
                         timeout=params["stop_timeout"])
        elif state == "stopped" and running:
            self.stop(container)
        if container is not None and not self.check:
            container = self.engine.inspect_container(container["Id"])
            if state == "healthy":
                container = self.wait_healthy(container)
        self.diff_after.setdefault("exists", True)
        self.diff_after["status"] = self.status_after(state, container, was_running, fresh)
        return self.result(container)

    def status_after(self, state, container, was_running, fresh):
        if not self.check and container is not None:
            return status_of(container)
        if state in ("started", "healthy") or (state == "present" and fresh and was_running):
            return "running"
        if state == "stopped":
            return "exited" if not fresh else "created"
        return "created" if fresh else status_of(container)

    def sync_networks(self, container, wanted, methods):
        mode = (container.get("HostConfig") or {}).get("NetworkMode") or "default"
        keep = [mode, "bridge"] if mode in ("default", "bridge") else [mode]
        connect, disconnect = network_changes(wanted.get("networks"),
                                              actual_networks(container),
                                              methods["networks"], keep=keep)
        for network in disconnect:
            self.act("disconnected from %s" % network["name"], self.engine.disconnect_network,
                     network["name"], container["Id"], force=True)
        for network in connect:
            self.act("connected to %s" % network["name"], self.engine.connect_network,
                     network["name"], container["Id"], endpoint_config(network))
        if connect or disconnect:
            self.diff_before["networks"] = actual_networks(container)
            self.diff_after["networks"] = wanted.get("networks")

    def result(self, container):
        result = dict(changed=bool(self.actions), actions=self.actions,
                      differences=self.differences, container=container or {})
        if self.module._diff:
            result["diff"] = dict(before=self.diff_before, after=self.diff_after)
        return result


def main():
    module = new_module(ARGUMENTS, supports_check_mode=True)
    run(module, "container %s" % module.params["name"],
        lambda engine: ContainerManager(module, engine).run())


if __name__ == "__main__":
    main()
