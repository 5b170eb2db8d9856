"""Loopback addresses for nodes on one machine: enough for hundreds of nodes."""
from cluster.ports import pick_loopback


def test_loopback_addresses_go_on_past_127_0_0_254():
    taken = {f"127.0.0.{n}" for n in range(2, 255)}
    first = pick_loopback(taken)
    second = pick_loopback(taken)
    assert first.startswith("127.0.1.") and second.startswith("127.0.1.") and first != second
    assert {first, second} <= taken  # handed out: never twice


def test_the_first_addresses_are_127_0_0_2_and_up():
    assert pick_loopback({"127.0.0.2"}).startswith("127.0.0.")


def test_ports_are_never_picked_where_ray_client_servers_start():
    from cluster.ports import RAY_CLIENT_SERVERS, SINGLE_PORTS, pick_port
    lo, hi = RAY_CLIENT_SERVERS
    offset = lo - SINGLE_PORTS[0]  # the offset of a state dir that starts the search there
    taken: set[int] = set()
    picked = [pick_port(0, taken, offset) for _ in range(5)]
    assert all(not lo <= port < hi for port in picked), picked
    assert picked[0] >= hi  # the search goes on past the reserved range
