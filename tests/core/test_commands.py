"""The commands this tool tells people to run: one builder, shell-quoted, so what a gate
prints, what the API answers and what a notification carries can be pasted as they are."""
import shlex

from core.commands import approve_command, deploy_master


def test_the_options_come_before_the_words_and_only_those_given():
    assert deploy_master("--status") == "python deploy_master.py --status"
    assert deploy_master("--status", config="c.yaml", server="http://h:8080") == \
        "python deploy_master.py --config c.yaml --server http://h:8080 --status"
    assert deploy_master("plan", state_dir="/s", config="c.yaml") == \
        "python deploy_master.py --config c.yaml --state-dir /s plan"


def test_a_value_a_shell_would_split_or_run_is_quoted_and_reads_back_as_given():
    nasty = "/tmp/my dir/$(rm -rf ~)/it's.yaml"
    command = deploy_master("approve", "worker_launch", config=nasty)
    assert shlex.split(command) == ["python", "deploy_master.py", "--config", nasty,
                                    "approve", "worker_launch"]


def test_a_path_object_is_taken_as_its_text(tmp_path):
    assert shlex.split(deploy_master("--status", state_dir=tmp_path))[2:4] == \
        ["--state-dir", str(tmp_path)]


def test_approving_a_plain_gate_needs_no_acknowledgement():
    assert approve_command("serve_deploy", destructive=False) == \
        "python deploy_master.py approve serve_deploy"


def test_approving_a_destructive_gate_acknowledges_the_risks_and_a_breaking_one_the_breakage():
    assert shlex.split(approve_command("worker_launch", destructive=True))[2:] == \
        ["approve", "worker_launch", "--acknowledge-risks"]
    assert shlex.split(approve_command("worker_launch", True, True, config="c.yaml"))[2:] == \
        ["--config", "c.yaml", "approve", "worker_launch", "--acknowledge-risks",
         "--acknowledge-breaking"]
