# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """How a module reaches the engine: the options every longboat.core module has."""

    DOCUMENTATION = r'''
options:
  engine_host:
    description:
      - The engine's API address on the managed host, as docker's C(-H)
        (C(unix:///path), C(tcp://host:port), C(https://host:port)).
      - If not set in the task, the environment variable E(LONGBOAT_HOST), then
        E(DOCKER_HOST) is used, then the default.
    type: str
    default: unix:///run/longboat/longboat.sock
    aliases: [docker_host]
  tls:
    description:
      - Speak TLS to a C(tcp://) O(engine_host) without verifying the engine's
        certificate (see O(tls_verify)).
    type: bool
    default: false
  tls_verify:
    description:
      - Speak TLS and verify the engine's certificate against O(ca_path) (or the
        system's store).
      - If not set in the task, the environment variable E(DOCKER_TLS_VERIFY) is used.
    type: bool
    default: false
  ca_path:
    description:
      - The CA certificate (PEM) that signed the engine's certificate.
    type: path
    aliases: [ca_cert]
  client_cert:
    description:
      - The client certificate (PEM) to present to an engine that wants mutual TLS.
    type: path
    aliases: [tls_client_cert]
  client_key:
    description:
      - The key (PEM) of O(client_cert).
    type: path
    aliases: [tls_client_key]
  timeout:
    description:
      - Seconds to wait for an answer of the engine (streams such as pull and build
        wait as long as they take).
      - If not set in the task, the environment variable E(DOCKER_TIMEOUT) is used.
    type: int
    default: 60
  api_version:
    description:
      - The Engine API version to speak, or V(auto) for the lower of the engine's and
        1.41.
      - If not set in the task, the environment variable E(DOCKER_API_VERSION) is used.
    type: str
    default: auto
    aliases: [docker_api_version]
notes:
  - The module runs on the managed host and talks to the engine there; it needs only
    Python 3.8 or later, no SDK.
'''

    # the attributes every module shares (check mode and diff mode are declared by
    # each module itself)
    ATTRIBUTES = r'''
attributes:
  action_group:
    description: Use C(group/longboat.core.longboat) in C(module_defaults) to set
      options such as O(engine_host) once for every longboat.core module.
    support: full
    membership:
      - longboat.core.longboat
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
'''
