"""What removing nodes or adding replicas would do (cluster/impact.py): the load read from the
live cluster (here a FakeRay), first-fit placement, and the shortfalls said for people. The
planners that use it: tests/checkpoints/steps/ and tests/checkpoints/test_operations.py."""
from __future__ import annotations

from cluster.impact import (
    Demand,
    NodeLoad,
    Shortfall,
    additions,
    cluster_loads,
    node_impact,
    place,
    replica_demands,
    replica_of,
    shortfalls,
)
from tests.fakes import world

GIB = 2 ** 30


def demand(label, cpu=1.0, app=None, **resources) -> Demand:
    return Demand(f"actor-{label}", label, app, {"CPU": cpu, **resources}, "")


def load(ip, cpu_total, cpu_used=0.0, actors=(), jobs=()) -> NodeLoad:
    return NodeLoad(f"node-{ip}", ip, {"CPU": cpu_total}, {"CPU": cpu_used}, list(actors),
                    list(jobs))


# -- which actors are Serve replicas ---------------------------------------------------------------
def test_a_serve_replica_is_named_by_its_app_and_deployment():
    assert replica_of({"class_name": "ServeReplica:greeter:Greeter"}) == ("greeter", "Greeter")
    assert replica_of({"class_name": "ServeController"}) is None
    assert replica_of({"class_name": "ServeReplica:greeter"}) is None
    assert replica_of({"class_name": "MyActor:a:b"}) is None
    assert replica_of({}) is None


# -- placement -------------------------------------------------------------------------------------
def test_demands_go_largest_first_to_the_first_node_they_fit_on():
    free = {"10.0.0.1": {"CPU": 1.0}, "10.0.0.2": {"CPU": 2.0}}
    small, big = demand("small", 1.0), demand("big", 2.0)
    placed, unplaced = place(free, [small, big])
    # the big one first: only the second node holds it; then the small one fits the first
    assert placed == {"10.0.0.2": 1, "10.0.0.1": 1} and unplaced == []
    assert free == {"10.0.0.1": {"CPU": 0.0}, "10.0.0.2": {"CPU": 0.0}}  # taken from ``free``


def test_taken_in_the_other_order_the_small_demand_would_have_left_the_big_one_out():
    """Why largest first: a first fit in the given order strands the big demand."""
    free = {"10.0.0.2": {"CPU": 2.0}, "10.0.0.1": {"CPU": 1.0}}
    placed, unplaced = place(free, [demand("small", 1.0), demand("big", 2.0)])
    assert unplaced == [] and sum(placed.values()) == 2


def test_what_fits_nowhere_is_returned_and_takes_nothing():
    free = {"10.0.0.1": {"CPU": 1.0}}
    placed, unplaced = place(free, [demand("gpu", 1.0, GPU=1.0), demand("fits", 0.5)])
    assert placed == {"10.0.0.1": 1} and [d.label for d in unplaced] == ["gpu"]
    assert free["10.0.0.1"] == {"CPU": 0.5}


def test_an_actor_pinned_to_a_node_fits_only_there():
    free = {"10.0.0.1": {"CPU": 4.0}, "10.0.0.2": {"CPU": 4.0}}
    pinned = demand("pinned", 1.0, **{"node:10.0.0.2": 0.001})
    assert place(dict(free), [pinned])[0] == {"10.0.0.2": 1}
    gone = demand("gone", 1.0, **{"node:10.0.0.9": 0.001})
    assert place(dict(free), [gone])[1] == [gone]


def test_the_head_marker_is_no_pin_and_no_capacity():
    free = {"10.0.0.1": {"CPU": 1.0}}
    placed, _ = place(free, [demand("x", 1.0, **{"node:__internal_head__": 0.001})])
    assert placed == {"10.0.0.1": 1}


# -- removing nodes --------------------------------------------------------------------------------
def test_removing_a_node_whose_replicas_fit_elsewhere_breaks_nothing():
    loads = {"10.0.0.1": load("10.0.0.1", 4.0, 1.0),
             "10.0.0.2": load("10.0.0.2", 2.0, 2.0, [demand("greeter/G", 1.0, "greeter")] * 2)}
    assert shortfalls(loads, {"10.0.0.2"}) == []


def test_removing_a_node_whose_replicas_do_not_fit_says_what_is_short():
    loads = {"10.0.0.1": load("10.0.0.1", 1.0, 0.2),
             "10.0.0.2": load("10.0.0.2", 2.0, 2.0, [demand("greeter/G", 1.0, "greeter")] * 2)}
    [short] = shortfalls(loads, {"10.0.0.2"})
    assert (short.app, short.count, short.demand) == ("greeter", 2, {"CPU": 1.0})
    assert short.describe() == "greeter needs 2 x 1 CPU, 0.8 CPU free on any remaining node"


def test_removing_every_node_leaves_nothing_free():
    loads = {"10.0.0.2": load("10.0.0.2", 2.0, 1.0, [demand("Counter", 1.0)])}
    [short] = shortfalls(loads, {"10.0.0.2"})
    assert short.app == "Counter" and short.best_free["CPU"] == 0.0


def test_a_shortfall_shows_memory_in_gib_and_only_what_the_demand_asks():
    short = Shortfall("big", 1, {"CPU": 0.5, "memory": 4 * GIB, "GPU": 0},
                      {"CPU": 3.0, "memory": GIB, "GPU": 1.0})
    assert short.describe("node") == ("big needs 1 x 0.5 CPU + 4 GiB memory, 3 CPU, "
                                      "1 GiB memory free on any node")


def test_what_a_nodes_removal_displaces_is_counted_for_people():
    node = NodeLoad("n", "10.0.0.2", {"CPU": 4.0, "GPU": 1.0},
                    {"CPU": 3.0, "GPU": 1.0, "object_store_memory": 1.5e9},
                    [demand("greeter/G", app="greeter"), demand("greeter/G", app="greeter"),
                     demand("Counter")], ["raysubmit_2", "raysubmit_1"])
    assert node_impact(node) == {"replicas": {"greeter/G": 2}, "actors": ["Counter"],
                                 "gpus_in_use": 1.0, "object_store_bytes_in_use": 1500000000,
                                 "jobs": ["raysubmit_1", "raysubmit_2"]}
    assert node.replicas == 2 and node.free() == {"CPU": 1.0, "GPU": 0.0}


# -- adding replicas -------------------------------------------------------------------------------
def test_new_replicas_ask_what_their_actor_options_say_and_one_cpu_by_default():
    [default] = replica_demands("a", 1, None)
    assert default.resources == {"CPU": 1.0, "GPU": 0.0, "memory": 0.0}
    two = replica_demands("b", 2, {"num_cpus": 0.5, "num_gpus": 1, "memory": GIB,
                                   "resources": {"accel": 2}})
    assert len(two) == 2 and len({d.actor_id for d in two}) == 2
    assert two[0].resources == {"CPU": 0.5, "GPU": 1.0, "memory": float(GIB), "accel": 2.0}
    assert two[0].app == "b"


def test_new_replicas_are_placed_on_the_free_resources_of_the_nodes_as_they_are():
    loads = {"10.0.0.1": load("10.0.0.1", 2.0, 1.5), "10.0.0.2": load("10.0.0.2", 2.0, 0.0)}
    placed, short = additions(loads, replica_demands("a", 3, {"num_cpus": 0.5}))
    assert placed == {"10.0.0.1": 1, "10.0.0.2": 2} and short == []
    placed, short = additions(loads, replica_demands("a", 6, {"num_cpus": 0.5}))
    assert sum(placed.values()) == 5 and short[0].count == 1
    assert short[0].describe("node") == "a needs 1 x 0.5 CPU, 0 CPU free on any node"


def test_a_redeploy_counts_the_replicas_it_replaces_as_free():
    old = [demand("a/D", 1.0, "a"), demand("a/D", 1.0, "a")]
    loads = {"10.0.0.1": load("10.0.0.1", 2.0, 2.0, old)}
    new = replica_demands("a", 2, {"num_cpus": 1})
    assert additions(loads, new)[1][0].count == 2  # beside the old ones: no room
    placed, short = additions(loads, new, replacing="a")
    assert placed == {"10.0.0.1": 2} and short == []
    assert additions(loads, new, replacing="other")[1][0].count == 2


def test_what_is_counted_free_for_a_redeploy_never_exceeds_the_nodes_total():
    # the load report can count more in use than the actors ask (other work): freeing the
    # replaced replicas gives back at most the node's total
    loads = {"10.0.0.1": load("10.0.0.1", 2.0, 0.5, [demand("a/D", 2.0, "a")])}
    placed, short = additions(loads, replica_demands("a", 3, {"num_cpus": 1}), replacing="a")
    assert placed == {"10.0.0.1": 2} and short[0].count == 1


# -- read from the live cluster --------------------------------------------------------------------
def test_the_load_of_every_alive_node_is_read_from_the_dashboard(tmp_path):
    w = world(tmp_path)
    app, node = w.worker(1, cpu=4)
    _, dead = w.worker(2, alive=False)
    w.ray.usage = {node: {"CPU": 0.5, "objectStoreMemory": 2e8, "node:10.0.0.1": 1.0}}
    w.ray.replica(node, "greeter", "G", cpu=1.0)
    w.ray.replica(node, "greeter", "G", cpu=1.0)
    w.ray.actors.append({"actor_id": "ctl", "node_id": w.head_node, "class_name": "ServeController",
                         "state": "ALIVE", "required_resources": {"CPU": 0}})
    w.ray.actors.append({"actor_id": "c", "node_id": node, "class_name": "Counter",
                         "state": "ALIVE", "required_resources": {"CPU": 0.5}})
    w.ray.jobs = [{"submission_id": "running", "driver_node_id": node, "status": "RUNNING"},
                  {"submission_id": "done", "driver_node_id": node, "status": "SUCCEEDED"},
                  {"job_id": "02000000", "driver_node_id": node, "status": "PENDING"}]
    loads = cluster_loads(w.ctx.cluster.inventory)
    dead_ip = next(n["node_ip"] for n in w.ray.nodes if n["node_id"] == dead)
    assert app.ip in loads and dead_ip not in loads
    worker = loads[app.ip]
    assert sorted(a.label for a in worker.actors) == ["Counter", "greeter/G", "greeter/G"]
    assert worker.jobs == ["running", "02000000"]
    # what the actors ask (2.5 CPU) is in use now, though the report still says 0.5
    assert worker.used["CPU"] == 2.5 and worker.used["object_store_memory"] == 2e8
    assert not any(k.startswith("node:") for k in worker.used)
    head_ip = next(n["node_ip"] for n in w.ray.nodes if n["node_id"] == w.head_node)
    assert loads[head_ip].actors == []  # Serve's own actors stay with the head
