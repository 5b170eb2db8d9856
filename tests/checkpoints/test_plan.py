from checkpoints import BY_NAME
from checkpoints.plan import Action, Kind, Plan, gate_for


def test_fingerprint_is_stable_and_ignores_notes():
    a = Plan("worker_launch", (Action(Kind.DELETE, "worker", "w-3", {"drain": True}),), notes=("x",))
    b = Plan("worker_launch", (Action(Kind.DELETE, "worker", "w-3", {"drain": True}),), notes=("y",))
    c = Plan("worker_launch", (Action(Kind.DELETE, "worker", "w-2", {"drain": True}),))
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert len(a.fingerprint) == 16


def test_actions_are_structured_and_round_trip():
    action = Action(Kind.DELETE, "worker", "w-3", {"drain": True})
    assert action.target == "worker w-3" and action.destructive
    assert action.describe() == "delete worker w-3 (drain=True)"
    plan = Plan("worker_launch", (action, Action(Kind.CREATE, "workers", None, {"count": 2})))
    again = Plan.from_dict(plan.to_dict())
    assert again == Plan("worker_launch", plan.actions) and again.fingerprint == plan.fingerprint
    assert plan.names() == ["w-3"] and plan.names(Kind.CREATE) == []


def test_empty_plan_needs_no_gate():
    gate = gate_for(BY_NAME["worker_launch"], Plan("worker_launch"), ("worker_launch",))
    assert not gate.required


def test_deletes_and_replaces_are_destructive():
    plan = Plan("serve_deploy", (Action(Kind.REPLACE, "app", "a"),))
    gate = gate_for(BY_NAME["serve_deploy"], plan)
    assert gate.required and gate.destructive and gate.risk == "destructive"
    plan = Plan("worker_launch", (Action(Kind.CREATE, "workers", None, {"count": 2}),))
    assert not gate_for(BY_NAME["worker_launch"], plan).required


def test_job_updates_need_approval_but_creates_do_not():
    jobs = BY_NAME["job_creation"]
    create = Plan("job_creation", (Action(Kind.CREATE, "job", "a"), Action(Kind.RUN, "job", "a")))
    update = Plan("job_creation", (Action(Kind.UPDATE, "job", "a", {"fields": ["script"]}),))
    assert not gate_for(jobs, create).required
    gate = gate_for(jobs, update)
    assert gate.required and not gate.destructive and "job a" in gate.reasons[0]


def test_config_can_require_approval_for_any_checkpoint():
    plan = Plan("worker_launch", (Action(Kind.CREATE, "workers", None, {"count": 1}),))
    gate = gate_for(BY_NAME["worker_launch"], plan, ("worker_launch",))
    assert gate.required and not gate.destructive
