"""A lab of hosts on one machine: network namespaces with private directories, for proving
what crosses hosts (a CML workspace whose apps are pods, SSH hosts, a CI runner outside).

    lab = Lab.create()                      # switch namespace, no host yet
    lab.add_network("ws", "198.18.0.0/24")  # a bridge in the switch namespace
    pod = lab.add_host("pod1", ["ws"], dirs={"/home/cdsw": "/tmp/x/project"})
    lab.spawn("pod1", ["python3", "server.py"], env={...})   # recorded, its own session
    lab.run("pod1", ["python3", "-c", "..."])                 # a short command
    lab.down()                              # stops every process, deletes every namespace

Isolation is the rule, not an option: every bridge lives in the lab's switch namespace,
every host is a namespace of its own whose one end of a veth pair is on a bridge, so no
interface of the lab is in the root namespace and no host has a default route: no packet of
the lab can leave the machine or reach its own addresses. Addresses are in 198.18.0.0/15
(RFC 2544), inside the lab only.

Each host has a mount namespace of its own, held by an "anchor" process (``lab.anchor``):
``/tmp``, ``/home`` and ``$HOME`` are empty tmpfs there, the directories the host is given
are bound in, and the rest of the filesystem (the interpreter, the checkout: the "image") is
shared. Processes enter a host with ``nsenter`` into its anchor's network and mount
namespaces, in a session of their own, and are recorded in ``<lab dir>/lab.json``; ``down``
stops exactly those (by session, after checking their start time), then whatever is still in
the lab's namespaces (ours by construction), then deletes the namespaces. A lab whose
owner process died (a test run killed) is found by its name prefix and removed by
``cleanup_stale``. Two labs never clash: each has its own id in every name.

Lab operations may run inside a lab host (the CML simulator makes a pod per app from inside
the workspace's edge host): every ``ip`` command goes through the "root anchor", a process
left in the namespaces the lab was created from.
"""
from __future__ import annotations

from lab.core import Host, Lab, LabError
from lab.machine import PREFIX, available
from lab.stale import cleanup_stale, list_labs

__all__ = ["Lab", "Host", "LabError", "PREFIX", "available", "cleanup_stale", "list_labs"]
