"""The crash hook: only with RAYDEPLOY_TEST_HOOKS=1 does RAYDEPLOY_CRASH_AT stop the process,
at the named checkpoint and phase (the n-th time for apply-mid). The exit is replaced here by
an exception; the module is re-read with each environment, and reset after."""
import importlib
import os

import pytest

from core import crashpoints


class Exited(Exception):
    pass


@pytest.fixture
def hooks(monkeypatch):
    """``hooks(crash_at, enabled=True)``: the module as a process with that environment."""
    def exit_(code):
        raise Exited(code)

    def configure(crash_at: str | None, enabled: bool = True):
        monkeypatch.delenv("RAYDEPLOY_TEST_HOOKS", raising=False)
        monkeypatch.delenv("RAYDEPLOY_CRASH_AT", raising=False)
        if enabled:
            monkeypatch.setenv("RAYDEPLOY_TEST_HOOKS", "1")
        if crash_at is not None:
            monkeypatch.setenv("RAYDEPLOY_CRASH_AT", crash_at)
        importlib.reload(crashpoints)
        return crashpoints

    monkeypatch.setattr(os, "_exit", exit_)
    yield configure
    monkeypatch.undo()
    importlib.reload(crashpoints)  # as the environment of this process has it


def test_without_the_hooks_switch_nothing_crashes(hooks):
    hook = hooks("head_launch:plan", enabled=False)
    assert not hook.active()
    hook.enter("head_launch")
    hook.reached("plan")
    hook.wrote()


def test_the_named_phase_of_the_named_checkpoint_exits_like_kill_9(hooks):
    hook = hooks("head_launch:gate")
    assert hook.active()
    hook.enter("project_setup")
    hook.reached("gate")  # another checkpoint: goes on
    hook.enter("head_launch")
    hook.reached("plan")  # another phase: goes on
    with pytest.raises(Exited) as exited:
        hook.reached("gate")
    assert exited.value.args == (137,)


def test_apply_mid_exits_after_the_nth_write_and_counts_restart_with_each_checkpoint(hooks):
    hook = hooks("worker_launch:apply-mid:3")
    hook.enter("worker_launch")
    hook.wrote()
    hook.wrote()
    hook.enter("worker_launch")  # a checkpoint starting again counts from zero
    hook.wrote()
    hook.wrote()
    with pytest.raises(Exited):
        hook.wrote()


def test_apply_mid_without_a_count_exits_after_the_first_write(hooks):
    hook = hooks("serve_deploy:apply-mid")
    hook.enter("serve_deploy")
    with pytest.raises(Exited):
        hook.wrote()


@pytest.mark.parametrize("spec", ["", "head_launch", "head_launch:nowhere", "a:plan:1:2", "a:plan:x"])
def test_a_spec_that_names_no_phase_arms_nothing(hooks, spec):
    hook = hooks(spec)
    assert not hook.active()
    hook.enter("head_launch")
    for phase in crashpoints.PHASES:
        hook.reached(phase)
