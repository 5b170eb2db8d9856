from checkpoints import BY_NAME
from checkpoints.plan import Action, Plan, gate_for


def test_fingerprint_is_stable_and_ignores_notes():
    a = Plan("worker_launch", (Action("delete", "worker w-3", {"drain": True}),), notes=("x",))
    b = Plan("worker_launch", (Action("delete", "worker w-3", {"drain": True}),), notes=("y",))
    c = Plan("worker_launch", (Action("delete", "worker w-2", {"drain": True}),))
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert len(a.fingerprint) == 16


def test_empty_plan_needs_no_gate():
    gate = gate_for(BY_NAME["worker_launch"], Plan("worker_launch"), ("worker_launch",))
    assert not gate.required


def test_deletes_and_replaces_are_destructive():
    plan = Plan("serve_deploy", (Action("replace", "app a"),))
    gate = gate_for(BY_NAME["serve_deploy"], plan)
    assert gate.required and gate.destructive and gate.risk == "destructive"
    plan = Plan("worker_launch", (Action("create", "2 worker(s)", {"count": 2}),))
    assert not gate_for(BY_NAME["worker_launch"], plan).required


def test_job_updates_need_approval_but_creates_do_not():
    jobs = BY_NAME["job_creation"]
    create = Plan("job_creation", (Action("create", "job a"), Action("run", "job a")))
    update = Plan("job_creation", (Action("update", "job a", {"fields": ["script"]}),))
    assert not gate_for(jobs, create).required
    gate = gate_for(jobs, update)
    assert gate.required and not gate.destructive and "job a" in gate.reasons[0]


def test_config_can_require_approval_for_any_checkpoint():
    plan = Plan("worker_launch", (Action("create", "1 worker(s)", {"count": 1}),))
    gate = gate_for(BY_NAME["worker_launch"], plan, ("worker_launch",))
    assert gate.required and not gate.destructive
