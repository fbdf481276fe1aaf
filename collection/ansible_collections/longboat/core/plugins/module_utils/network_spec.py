# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The network and volume modules' model: options as canonical values, Docker's create
requests, the values read back from an inspected object, and what differs. A network's
or a volume's settings cannot change in place: a difference means remove and create
again. Pure: unit tests load it by path."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.longboat.core.plugins.module_utils.compare import (
    DICT, SET, STRICT, VALUE, compare_all)

NETWORK_OPTIONS = {
    "driver": (VALUE, STRICT),
    "driver_options": (DICT, STRICT),
    "ipam_driver": (VALUE, STRICT),
    "ipam_config": (SET, STRICT),
    "internal": (VALUE, STRICT),
    "attachable": (VALUE, STRICT),
    "enable_ipv6": (VALUE, STRICT),
    "labels": (DICT, STRICT),
}

VOLUME_OPTIONS = {
    "driver": (VALUE, STRICT),
    "driver_options": (DICT, STRICT),
    "labels": (DICT, STRICT),
}


def _strings(value):
    if value is None:
        return None
    return dict((str(k), str(v)) for k, v in value.items())


def canonical_ipam(entry):
    """An IPAM pool with Docker's keys, empty fields dropped."""
    out = {}
    for ours, theirs in (("subnet", "Subnet"), ("gateway", "Gateway"),
                         ("iprange", "IPRange"), ("aux_addresses", "AuxiliaryAddresses")):
        value = entry.get(ours, entry.get(theirs))
        if value:
            out[ours] = dict(value) if ours == "aux_addresses" else str(value)
    return out


def wanted_network(params):
    ipam = params.get("ipam_config")
    return {
        "driver": params.get("driver"),
        "driver_options": _strings(params.get("driver_options")),
        "ipam_driver": params.get("ipam_driver"),
        "ipam_config": None if ipam is None else [canonical_ipam(e) for e in ipam],
        "internal": params.get("internal"),
        "attachable": params.get("attachable"),
        "enable_ipv6": params.get("enable_ipv6"),
        "labels": _strings(params.get("labels")),
    }


def actual_network(network):
    ipam = network.get("IPAM") or {}
    return {
        "driver": network.get("Driver") or "bridge",
        "driver_options": dict(network.get("Options") or {}),
        "ipam_driver": ipam.get("Driver") or "default",
        "ipam_config": [canonical_ipam(e) for e in ipam.get("Config") or []],
        "internal": bool(network.get("Internal")),
        "attachable": bool(network.get("Attachable")),
        "enable_ipv6": bool(network.get("EnableIPv6")),
        "labels": dict(network.get("Labels") or {}),
    }


def network_body(name, wanted):
    body = {"Name": name, "CheckDuplicate": True,
            "Driver": wanted.get("driver") or "bridge"}
    if wanted.get("driver_options"):
        body["Options"] = wanted["driver_options"]
    if wanted.get("ipam_driver") or wanted.get("ipam_config"):
        body["IPAM"] = {"Driver": wanted.get("ipam_driver") or "default",
                        "Config": [_ipam_body(e) for e in wanted.get("ipam_config") or []]}
    for option, key in (("internal", "Internal"), ("attachable", "Attachable"),
                        ("enable_ipv6", "EnableIPv6")):
        if wanted.get(option) is not None:
            body[key] = wanted[option]
    if wanted.get("labels"):
        body["Labels"] = wanted["labels"]
    return body


def _ipam_body(entry):
    out = {}
    for ours, theirs in (("subnet", "Subnet"), ("gateway", "Gateway"),
                         ("iprange", "IPRange"), ("aux_addresses", "AuxiliaryAddresses")):
        if entry.get(ours):
            out[theirs] = entry[ours]
    return out


def network_differences(wanted, network, methods):
    actual = actual_network(network)
    if wanted.get("ipam_config") is not None:
        # the engine fills in what was not asked for (a gateway for a subnet): compare
        # only the fields the task sets
        keys = set(k for entry in wanted["ipam_config"] for k in entry)
        actual["ipam_config"] = [dict((k, v) for k, v in entry.items() if k in keys)
                                 for entry in actual["ipam_config"]]
    return compare_all(NETWORK_OPTIONS, methods, wanted, actual)


def connected_names(network):
    """Names of the containers on an inspected network."""
    return sorted((c.get("Name") or "").lstrip("/")
                  for c in (network.get("Containers") or {}).values())


def connection_changes(wanted, connected, appends):
    """``(connect, disconnect)``: names in ``wanted`` not connected; with ``appends``
    False, connected containers not wanted."""
    if wanted is None:
        return [], []
    wanted = [w.lstrip("/") for w in wanted]
    connect = [name for name in wanted if name not in connected]
    disconnect = [] if appends else [name for name in connected if name not in wanted]
    return connect, disconnect


def wanted_volume(params):
    return {"driver": params.get("driver"),
            "driver_options": _strings(params.get("driver_options")),
            "labels": _strings(params.get("labels"))}


def actual_volume(volume):
    return {"driver": volume.get("Driver") or "local",
            "driver_options": dict(volume.get("Options") or {}),
            "labels": dict(volume.get("Labels") or {})}


def volume_body(name, wanted):
    body = {"Name": name, "Driver": wanted.get("driver") or "local"}
    if wanted.get("driver_options"):
        body["DriverOpts"] = wanted["driver_options"]
    if wanted.get("labels"):
        body["Labels"] = wanted["labels"]
    return body


def volume_differences(wanted, volume, methods):
    return compare_all(VOLUME_OPTIONS, methods, wanted, actual_volume(volume))
