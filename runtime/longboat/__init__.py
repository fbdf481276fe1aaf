"""Longboat: a container engine, a Swarm-style orchestrator and an Ansible collection."""

__version__ = "0.1.0"
