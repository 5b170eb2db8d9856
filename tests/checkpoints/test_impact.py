"""What removals displace and break, and where added replicas go, attached to the actions: read
from a fake Ray (the real inventory and placement), with the cases Ray cannot be asked."""
from checkpoints import impact
from checkpoints.plan import Action, Kind
from cluster.impact import replica_demands
from tests.fakes import world


def head_ip(w) -> str:
    return next(a.ip for a in w.platform.apps.values() if a.name == "rd-head")


def removal(app, kind=Kind.DELETE):
    return Action(kind, "worker", app.name, {"drain": True})


def test_without_a_head_the_loads_are_unknown_and_every_removal_says_so(tmp_path):
    w = world(tmp_path, with_head=False)
    app, _ = w.worker(1)
    loads = impact.loads_or_none(w.ctx)
    assert loads is None
    (action,) = impact.with_removal_impact(w.ctx, loads, [removal(app)], {app.name: app})
    assert action.impact == {"notes": ["impact unknown: Ray's state could not be read"]}
    assert action.details == {"drain": True} and not action.breaks


def test_the_loads_are_every_alive_node_by_address(tmp_path):
    w = world(tmp_path)
    app, node = w.worker(1)
    w.worker(2, alive=False)
    w.ray.replica(node, "hello", cpu=0.5)
    loads = impact.loads_or_none(w.ctx)
    assert set(loads) == {head_ip(w), app.ip}  # the head and the alive worker
    assert impact.load_of(w.ctx, loads, app).replicas == 1
    assert impact.load_of(w.ctx, None, app) is None


def test_a_worker_without_an_alive_ray_node_displaces_nothing(tmp_path):
    w = world(tmp_path)
    app, _ = w.worker(1, alive=False)
    loads = impact.loads_or_none(w.ctx)
    (action,) = impact.with_removal_impact(w.ctx, loads, [removal(app)], {app.name: app})
    assert action.impact == {"notes": ["no ALIVE Ray node: displaces nothing"]}


def test_removals_are_weighed_together_and_only_the_nodes_of_a_broken_app_break_it(tmp_path):
    w = world(tmp_path)
    one, n1 = w.worker(1)
    two, n2 = w.worker(2)
    _, n3 = w.worker(3, cpu=2)  # stays, with room for one more sentiment replica
    w.ray.replica(n1, "sentiment", cpu=1)
    w.ray.replica(n2, "sentiment", cpu=1)
    w.ray.replica(n2, "tiny", cpu=0.1)
    w.ray.replica(n3, "tiny", cpu=0.5)
    w.ray.replica(w.head_node, "hello", cpu=1)
    apps = {a.name: a for a in (one, two)}
    loads = impact.loads_or_none(w.ctx)
    first, second = impact.with_removal_impact(w.ctx, loads, [removal(one), removal(two)], apps)
    assert first.breaks == ["sentiment"] and second.breaks == ["sentiment"]
    assert first.impact["replicas"] == {"sentiment/D": 1}
    assert second.impact["replicas"] == {"sentiment/D": 1, "tiny/D": 1}
    # worker 3 takes one sentiment replica, then tiny: 0.4 CPU left for the other replica
    assert second.impact["shortfalls"] == ["sentiment needs 1 x 1 CPU, 0.4 CPU free on any "
                                           "remaining node"]
    alone = impact.with_removal_impact(w.ctx, loads, [removal(one)], apps)[0]
    assert not alone.breaks and "breaks" not in alone.details  # worker 3 takes it then


def test_the_reason_for_choosing_a_node_is_noted_on_deletions_only(tmp_path):
    w = world(tmp_path)
    app, _ = w.worker(1)
    loads = impact.loads_or_none(w.ctx)
    deleted, replaced = impact.with_removal_impact(
        w.ctx, loads, [removal(app), removal(app, Kind.REPLACE)], {app.name: app},
        why="the least busy")
    assert deleted.impact["notes"] == ["the least busy"] and replaced.impact["notes"] == []


def test_the_cheapest_nodes_to_lose_come_first_fewest_actors_then_newest(tmp_path):
    w = world(tmp_path)
    busy, busy_node = w.worker(1)
    old_idle, _ = w.worker(2)
    new_idle, _ = w.worker(3)
    down, _ = w.worker(4, alive=False)
    w.ray.replica(busy_node, "hello", cpu=0.1)
    loads = impact.loads_or_none(w.ctx)
    order = impact.least_impact_first(w.ctx, loads, [busy, old_idle, new_idle, down])
    assert [a.name for a in order] == [down.name, new_idle.name, old_idle.name, busy.name]
    unknown = impact.least_impact_first(w.ctx, None, [busy, old_idle, new_idle])
    assert [a.name for a in unknown] == [new_idle.name, old_idle.name, busy.name]


def test_added_replicas_are_placed_node_by_node_and_what_fits_nowhere_is_said(tmp_path):
    w = world(tmp_path)
    app, node = w.worker(1)
    w.ray.replica(node, "hello", cpu=1)
    w.ray.replica(w.head_node, "other", cpu=0.5)
    loads = impact.loads_or_none(w.ctx)
    deploy = Action(Kind.UPDATE, "app", "hello")
    demands = replica_demands("hello", 2, {"num_cpus": 0.5})
    placed, missing = impact.with_fit(loads, deploy, demands, assumed="as configured")
    head = head_ip(w)
    assert placed.impact["placement"] == {head: 1}
    assert placed.impact["notes"] == [
        f"places 1 of 2 replicas: 1 on {head}",
        "DOES NOT FIT: hello needs 1 x 0.5 CPU, 0 CPU free on any node", "as configured"]
    assert [s.count for s in missing] == [1]
    again, missing = impact.with_fit(loads, deploy, demands, replacing="hello")
    assert again.impact["placement"] == {head: 1, app.ip: 1} and missing == []
    assert again.impact["notes"] == [f"places 2 of 2 replicas: 1 on {head}, 1 on {app.ip}"]


def test_without_loads_the_fit_is_unknown(tmp_path):
    action, missing = impact.with_fit(None, Action(Kind.CREATE, "app", "hello"),
                                      replica_demands("hello", 1, None))
    assert action.impact == {"notes": ["fit unknown: Ray's state could not be read"]}
    assert missing == []
