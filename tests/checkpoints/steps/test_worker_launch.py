"""WorkerLaunch.apply against the in-memory platform: a worker whose start ends (Ray's start
timed out on a busy host, say) is started once more; twice is a failure naming it."""
from __future__ import annotations

from dataclasses import replace

import pytest

from checkpoints import BY_NAME
from cluster.lifecycle import NodeFailed
from tests.fakes import world


def flaky_starts(w, failures: int):
    """The next ``failures`` created apps end as they start; the rest join Ray."""
    create, left = w.platform.create_app, [failures]

    def create_app(spec):
        app = create(spec)
        if left[0] > 0:
            left[0] -= 1
            w.platform.apps[app.id] = replace(app, status="failed")
        else:
            w.ray.node(app)
        return app
    w.platform.create_app = create_app


def worker_names(w):
    return sorted(a.name for a in w.platform.apps.values() if "worker" in a.name)


def test_a_worker_that_ends_while_starting_is_started_once_more(tmp_path):
    w = world(tmp_path, apps=())  # no Serve apps: verify is about the workers
    flaky_starts(w, failures=1)
    launch = BY_NAME["worker_launch"]
    launch.apply(w.ctx, launch.plan(w.ctx))
    assert len(worker_names(w)) == 2
    assert all(a.status == "running" for a in w.platform.apps.values())
    assert launch.verify(w.ctx) == []


def test_a_worker_that_ends_twice_fails_the_checkpoint_naming_it(tmp_path):
    w = world(tmp_path, workers={"count": 1})
    flaky_starts(w, failures=2)
    launch = BY_NAME["worker_launch"]
    with pytest.raises(NodeFailed, match=r"node app rd-worker-\d+ is failed"):
        launch.apply(w.ctx, launch.plan(w.ctx))
