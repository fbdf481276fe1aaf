"""The lab: several hosts on one machine (``longboat lab up|down|ls|ssh|exec``).

Each node is a network, mount and UTS namespace kept alive by bind-mounted namespace
files (no holder process), with its own ``/etc/longboat``, ``/var/lib/longboat``,
``/run``, ``/var/log`` and ``/root/.ssh``, its own cgroup parent, a veth on the lab
bridge, an sshd and a supervised longboatd. docs/lab.md has the layout and the rules.
"""

#: the lab `longboat lab` commands act on when --name is not given
DEFAULT_NAME = "lab"
