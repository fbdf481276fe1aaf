# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""What every longboat.core module shares: the connection options (documented by the
``longboat.core.engine_options`` doc fragment), the engine client, and errors turned
into ``fail_json`` messages that say what to fix.

The client is ``api.py``: Longboat's own low-level client, vendored unchanged (standard
library only, so any Python 3.8+ on a managed host runs it). :class:`Engine` adds the
endpoints the modules need that the command line does not use yet (volumes,
build), as plain requests through the same plumbing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.longboat.core.plugins.module_utils.api import (
    DEFAULT_HOST, APIClient, APIError, ClientError, DaemonUnreachable, TLSConfig,
    encode_filters)

ENGINE_ARGUMENT_SPEC = dict(
    engine_host=dict(type="str", default=DEFAULT_HOST, aliases=["docker_host"],
                     fallback=(env_fallback, ["LONGBOAT_HOST", "DOCKER_HOST"])),
    tls=dict(type="bool", default=False),
    tls_verify=dict(type="bool", default=False,
                    fallback=(env_fallback, ["DOCKER_TLS_VERIFY"])),
    ca_path=dict(type="path", aliases=["ca_cert"]),
    client_cert=dict(type="path", aliases=["tls_client_cert"]),
    client_key=dict(type="path", aliases=["tls_client_key"], no_log=False),
    timeout=dict(type="int", default=60, fallback=(env_fallback, ["DOCKER_TIMEOUT"])),
    api_version=dict(type="str", default="auto", aliases=["docker_api_version"],
                     fallback=(env_fallback, ["DOCKER_API_VERSION"])),
)

USER_AGENT = "ansible-longboat.core/0.1.0"


def argument_spec(**options):
    """The connection options plus the module's own."""
    spec = dict(ENGINE_ARGUMENT_SPEC)
    spec.update(options)
    return spec


class Engine(APIClient):
    """The engine's API: :class:`APIClient` plus volumes, build and the prunes the
    command line does not use yet."""

    # -- lookups that answer None for "no such object" --------------------------------
    def find_container(self, ref):
        try:
            return self.inspect_container(ref)
        except APIError as exc:
            if exc.status == 404:
                return None
            raise

    def find_image(self, ref):
        try:
            return self.inspect_image(ref)
        except APIError as exc:
            if exc.status == 404:
                return None
            raise

    def find_network(self, ref):
        try:
            return self.inspect_network(ref)
        except APIError as exc:
            if exc.status == 404:
                return None
            raise

    def find_volume(self, name):
        try:
            return self.inspect_volume(name)
        except APIError as exc:
            if exc.status == 404:
                return None
            raise

    def _post_json(self, path, body, params=None):
        return self._json("POST", path, params=params, body=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json"})

    # -- volumes ---------------------------------------------------------------------
    def volumes(self, filters=None):
        answer = self._json("GET", "/volumes", params={"filters": encode_filters(filters)})
        return list((answer or {}).get("Volumes") or [])

    def inspect_volume(self, name):
        return dict(self._json("GET", "/volumes/" + _escape(name)))

    def create_volume(self, body):
        return dict(self._post_json("/volumes/create", body) or {})

    def remove_volume(self, name, force=False):
        self._json("DELETE", "/volumes/" + _escape(name),
                   params={"force": "1" if force else None})

    def prune_volumes(self, filters=None):
        return dict(self._json("POST", "/volumes/prune", timeout=None,
                               params={"filters": encode_filters(filters)}) or {})

    # -- build -----------------------------------------------------------------------
    def build(self, context, params):
        """``POST /build`` with a tar of the context (a file object); its events."""
        response = self._send("POST", "/build", params=params, body=context, timeout=None,
                              headers={"Content-Type": "application/x-tar"})
        return self._events(response)

    def prune_build_cache(self, filters=None):
        return dict(self._json("POST", "/build/prune", timeout=None,
                               params={"filters": encode_filters(filters)}) or {})


def _escape(name):
    from urllib.parse import quote

    return quote(name, safe="")


def connect(module):
    """The engine the module's connection options name, negotiated on first request."""
    params = module.params
    tls = None
    if params.get("tls") or params.get("tls_verify") or \
            str(params["engine_host"]).startswith("https://"):
        tls = TLSConfig(ca=params.get("ca_path"), cert=params.get("client_cert"),
                        key=params.get("client_key"), verify=bool(params.get("tls_verify")))
    try:
        return Engine(params["engine_host"], version=params.get("api_version") or "auto",
                      tls=tls, timeout=params.get("timeout"), user_agent=USER_AGENT)
    except ClientError as exc:
        module.fail_json(msg="engine_host/TLS options: %s" % exc.message)


def fail_from(module, exc, action):
    """fail_json for an error of the client, with what to do about it."""
    if isinstance(exc, DaemonUnreachable):
        module.fail_json(msg="%s: %s. Check that longboatd runs on the managed host, or "
                         "point engine_host (or LONGBOAT_HOST) at it." % (action, exc.message))
    if isinstance(exc, APIError):
        module.fail_json(msg="%s: the engine answered: %s" % (action, exc.message),
                         status=exc.status)
    module.fail_json(msg="%s: %s" % (action, exc), exception=traceback.format_exc())


def run(module, action, function):
    """Call ``function(engine)`` and exit with its result dict; client errors become a
    fail_json saying ``action`` failed and why."""
    engine = connect(module)
    try:
        result = function(engine)
    except ClientError as exc:
        fail_from(module, exc, action)
    except ValueError as exc:
        module.fail_json(msg="%s: %s" % (action, exc))
    finally:
        engine.close()
    module.exit_json(**result)


def new_module(spec, **kwargs):
    """An AnsibleModule with the connection options added."""
    return AnsibleModule(argument_spec=argument_spec(**spec), **kwargs)
