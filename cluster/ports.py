"""Loopback addresses and ports for nodes on one machine.

Several clusters may share this machine (a user's, a test's), and Ray binds some ports on
every address (GCS, raylet) and the agent port on 127.0.0.1 as well as the node address, so
a port is free only if it binds on the wildcard address. Addresses are 127.0.0.2 and up:
Ray rewrites 127.0.0.1 to the machine's routable address. Past 127.0.0.254 they go on in
127.0.1.0/24 and up (Linux answers on all of 127.0.0.0/8), so hundreds of nodes fit.
"""
from __future__ import annotations

import socket

FIRST_HOST, LAST_HOST = 2, 254  # of each 127.0.<n>.0/24
LOOPBACK_NETS = 256  # 127.0.0.0/24 to 127.0.255.0/24


def _ephemeral_start() -> int:
    """Ports from here up are handed out to outgoing connections: never pick them."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


EPHEMERAL_START = _ephemeral_start()


def port_free(port: int, host: str = "0.0.0.0") -> bool:
    """Whether a server could listen on ``port`` now. SO_REUSEADDR as servers set it, so a
    port with only TIME_WAIT connections left (a stopped cluster's) counts as free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


SINGLE_PORTS = (20000, 26000)  # GCS, dashboard, agents, ... one port each
# every head's Ray Client proxy starts a server per connection on 127.0.0.1 at a port of
# 23000-23999 (fixed in Ray: ray.util.client.server.proxier), whichever cluster it is: ours
# stay out of it, so a connection never finds its port taken by a node of ours
RAY_CLIENT_SERVERS = (23000, 24000)


def reserved(port: int) -> bool:
    return RAY_CLIENT_SERVERS[0] <= port < RAY_CLIENT_SERVERS[1]
WORKER_PORTS = (26000, min(EPHEMERAL_START, 32768))  # blocks for Ray's worker processes


def pick_port(preferred: int, taken: set[int], offset: int = 0) -> int:
    """``preferred`` if free (and not in ``taken``), else the first free single port from
    ``offset`` into the range (clusters use different offsets, so two clusters starting at
    the same moment rarely reach for the same port)."""
    lo, hi = SINGLE_PORTS
    start = lo + offset % (hi - lo)
    candidates = ([preferred] if preferred else []) + list(range(start, hi)) + list(range(lo, start))
    for port in candidates:
        if port not in taken and not reserved(port) and port_free(port):
            taken.add(port)
            return port
    raise RuntimeError(f"no free port in {lo}-{hi}")


def pick_port_range(size: int, taken: set[int], offset: int = 0) -> tuple[int, int]:
    """A block of ``size`` consecutive free ports (for Ray's per-node worker port range)."""
    lo, hi = WORKER_PORTS
    start = lo + offset % max(hi - lo - size, 1)
    for begin, end in ((start, hi), (lo, start + size)):
        while begin + size <= end:
            block = range(begin, begin + size)
            clash = next((p for p in block if p in taken or not port_free(p)), None)
            if clash is None:
                taken.update(block)
                return begin, begin + size - 1
            begin = clash + 1
    raise RuntimeError(f"no {size} free consecutive ports in {lo}-{hi}")


def listening_addresses() -> set[str]:
    """IPv4 addresses some process on this machine listens on (from /proc/net/tcp)."""
    out = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] == "0A":  # LISTEN
                    out.add(socket.inet_ntoa(bytes.fromhex(cols[1].split(":")[0])[::-1]))
    except OSError:
        pass
    return out


def pick_loopback(taken: set[str]) -> str:
    """A loopback address nobody listens on and no record of ours holds."""
    busy = listening_addresses() | taken
    for net in range(LOOPBACK_NETS):
        for n in range(FIRST_HOST if net == 0 else 1, LAST_HOST + 1):
            ip = f"127.0.{net}.{n}"
            if ip not in busy:
                taken.add(ip)
                return ip
    raise RuntimeError(f"every loopback address 127.0.0.2-127.0.{LOOPBACK_NETS - 1}.254 is in use")
