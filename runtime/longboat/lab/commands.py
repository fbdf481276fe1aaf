"""The ``lab`` group's parsers, kept apart from the handlers (longboat.lab.cli) so that
building the CLI's parser imports nothing heavy."""

from __future__ import annotations

from longboat.lab import DEFAULT_NAME


def add_commands(sub: object) -> None:
    """The ``lab`` group's parsers (``sub`` is the group's subparsers)."""
    import argparse

    from longboat.cli.main import _cmd

    H = "longboat.lab.cli:"

    def name(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", default=DEFAULT_NAME,
                       help='the lab\'s name (default "%(default)s")')

    p = _cmd(sub, "up", H + "up", "Make a lab: N hosts on this machine, each with its "
                                  "own engine and sshd")
    name(p)
    p.add_argument("--nodes", type=int, default=3,
                   help="number of nodes, 1-99 (default %(default)s)")
    p.add_argument("--subnet", help="IPv4 CIDR of the lab bridge (default: 10.250.0.0/24 "
                                    "for lab 'lab', else a free 10.250.N.0/24)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p = _cmd(sub, "down", H + "down", "Remove a lab and everything it made")
    name(p)
    p.add_argument("--purge", action="store_true",
                   help="also remove its data: keys, inventory, the nodes' directories")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p = _cmd(sub, "ls", H + "ls", "List labs", ("list",))
    p.add_argument("-q", "--quiet", action="store_true", help="only display lab names")
    p = _cmd(sub, "ssh", H + "ssh", "Log in to a node (or run COMMAND there) with ssh, as "
                                    "root with the lab's key")
    name(p)
    p.add_argument("node", metavar="NODE", help="<lab>-<n>, or n")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")
    p = _cmd(sub, "exec", H + "exec_", "Run a command on a node (its namespaces and "
                                       "cgroup; default: a shell)")
    name(p)
    p.add_argument("node", metavar="NODE", help="<lab>-<n>, or n")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND")
