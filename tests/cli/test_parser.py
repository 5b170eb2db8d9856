"""deploy_master.py's arguments: options every command takes before or after its subcommand,
the actions that exclude each other, and names checked against the checkpoints and operations."""
import pytest

from checkpoints import ORDER
from cli.parser import build_parser


def parse(*words):
    return build_parser().parse_args(list(words))


def refused(capsys, *words) -> str:
    with pytest.raises(SystemExit) as exited:
        parse(*words)
    assert exited.value.code == 2  # a usage error
    return capsys.readouterr().err


def test_nothing_given_is_no_command_with_every_default():
    args = parse()
    assert args.command is None and not (args.deploy or args.resume or args.status)
    assert (args.config, args.state_dir, args.server, args.server_timeout, args.format) == \
        (None, None, None, None, "text")


@pytest.mark.parametrize("words", [
    ("--config", "c.yaml", "--state-dir", "/s", "-v", "approve", "worker_launch"),
    ("approve", "worker_launch", "--config", "c.yaml", "--state-dir", "/s", "--verbose"),
    ("--config", "c.yaml", "approve", "--state-dir", "/s", "worker_launch", "-v"),
])
def test_the_common_options_are_taken_before_or_after_the_subcommand(words):
    args = parse(*words)
    assert (args.command, args.name, args.config, args.state_dir, args.verbose) == \
        ("approve", "worker_launch", "c.yaml", "/s", True)


def test_a_subcommand_does_not_reset_what_was_given_before_it():
    for command in (("plan",), ("audit",), ("reject", "head_launch")):
        args = parse("--server", "http://cp:8080", "--token-file", "t", "--operator", "Al",
                     "--server-timeout", "2.5", *command)
        assert (args.server, args.token_file, args.operator, args.server_timeout) == \
            ("http://cp:8080", "t", "Al", 2.5), command


def test_an_option_given_after_the_subcommand_wins():
    assert parse("--config", "a.yaml", "plan", "--config", "b.yaml").config == "b.yaml"


def test_one_action_at_a_time(capsys):
    assert "not allowed with argument" in refused(capsys, "--deploy", "--status")
    assert "not allowed with argument" in refused(capsys, "--teardown", "--resume")
    args = parse("--deploy", "--auto-approve", "--acknowledge-breaking", "--no-wait", "--force")
    assert args.deploy and args.auto_approve and args.acknowledge_breaking and args.no_wait


def test_a_checkpoint_is_one_of_the_deploys(capsys):
    assert parse("--deploy", "--checkpoint", "serve_deploy").checkpoint == "serve_deploy"
    assert parse("--deploy", "--start-from", ORDER[-1]).start_from == ORDER[-1]
    assert "invalid choice: 'teardown'" in refused(capsys, "--checkpoint", "teardown")
    assert "not allowed with argument" in refused(capsys, "--checkpoint", ORDER[0],
                                                  "--start-from", ORDER[1])


def test_approvals_name_a_checkpoint_or_an_operation(capsys):
    assert parse("approve", "node_remove", "--acknowledge-risks").name == "node_remove"
    assert parse("reject", "teardown", "--reason", "not today").reason == "not today"
    assert "invalid choice: 'everything'" in refused(capsys, "approve", "everything")


def test_only_an_approval_acknowledges_risks(capsys):
    args = parse("approve", "worker_launch", "--acknowledge-risks", "--acknowledge-breaking",
                 "--fingerprint", "fp1", "--run", "run-1")
    assert (args.acknowledge_risks, args.acknowledge_breaking, args.fingerprint, args.run) == \
        (True, True, "fp1", "run-1")
    assert "unrecognized arguments: --acknowledge-risks" in \
        refused(capsys, "reject", "worker_launch", "--acknowledge-risks")


def test_the_audit_lists_by_default_and_has_its_own_formats(capsys):
    args = parse("audit")
    assert (args.audit_command, args.format, args.since, args.action) == ("list", "text", None, None)
    args = parse("audit", "verify", "--expect-head", "ab12", "--format", "jsonl", "--since", "2h")
    assert (args.audit_command, args.expect_head, args.format, args.since) == \
        ("verify", "ab12", "jsonl", "2h")
    assert parse("--status", "--format", "json").format == "json"
    assert "invalid choice: 'jsonl'" in refused(capsys, "--status", "--format", "jsonl")
    assert "invalid choice: 'export'" in refused(capsys, "audit", "export")


def test_a_plan_may_be_saved_and_applied_exactly(capsys):
    assert parse("plan", "--out", "plan.json").out == "plan.json"
    assert parse("--deploy", "--plan-file", "plan.json").plan_file == "plan.json"
    assert "--server-timeout: invalid float value" in refused(capsys, "--server-timeout", "soon")


def test_the_help_names_the_exit_codes_and_hides_the_internal_run_id():
    text = build_parser("Deploys.").format_help()
    assert "Deploys." in text and "3 awaiting approval, 4 rejected" in text
    assert "--run-id" not in text and parse("--resume", "--run-id", "run-1").run_id == "run-1"


def test_cleanup_hosts_takes_a_host_and_the_gate_flags_before_or_after_it():
    after = parse("cleanup-hosts", "--host", "w2", "--auto-approve")
    assert (after.command, after.host, after.auto_approve, after.no_wait) == (
        "cleanup-hosts", "w2", True, False)
    before = parse("--no-wait", "cleanup-hosts")
    assert (before.host, before.no_wait, before.auto_approve) == (None, True, False)
