"""Clients of longboatd's Docker-compatible API.

:mod:`longboat.client.api` is the low-level client (one method per endpoint) that the
``longboat`` CLI uses and the Ansible collection vendors: it depends on the standard
library only (paramiko, for ``ssh://``, is imported when such a host is used).
"""
