# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Image references as docker writes them: ``[REGISTRY/]PATH[:TAG][@DIGEST]``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def split_reference(ref):
    """``(repository, tag or digest)``; the tag defaults to ``latest``."""
    if "@" in ref:
        repository, _sep, digest = ref.partition("@")
        return repository, digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, "latest"


def full_reference(ref):
    """``busybox`` -> ``busybox:latest``; digests and tags kept."""
    repository, tag = split_reference(ref)
    return "%s%s%s" % (repository, "@" if tag.startswith("sha256:") else ":", tag)
