"""The ``ssh:`` config section: every mistake said by its field, at load time."""
from __future__ import annotations

import pytest

from cluster.config import ConfigError, parse_config


def errors_of(section: dict) -> dict:
    with pytest.raises(ConfigError) as raised:
        parse_config({"platform": "ssh", "ssh": section}, environ={})
    return raised.value.errors


def test_the_hosts_load_with_the_logins_defaults():
    config = parse_config({"platform": "ssh", "ssh": {
        "hosts": [{"address": "10.0.0.1", "role": "head"}, {"name": "gpu1", "address": "10.0.0.2",
                                                             "gpus": 2, "port": 2222}],
        "user": "ubuntu", "package_index": "http://pypi.lan/simple"}}, environ={})
    ssh = config.platform_settings["ssh"]
    assert [h["address"] for h in ssh.hosts] == ["10.0.0.1", "10.0.0.2"]
    assert (ssh.hosts[1]["gpus"], ssh.hosts[1]["port"], ssh.user, ssh.port) == (2, 2222, "ubuntu", 22)
    assert (ssh.known_hosts, ssh.python, ssh.remote_dir) == ("~/.ssh/known_hosts", "python3",
                                                             ".raydeploy")


def test_the_ssh_platform_needs_hosts_or_an_inventory_not_both():
    assert "ssh.hosts" in errors_of({})
    both = errors_of({"hosts": [{"address": "10.0.0.1"}], "inventory": "inventory.ini"})
    assert both == {"ssh.inventory": ["Give hosts or inventory, not both."]}


def test_bad_hosts_are_said_by_their_field():
    errors = errors_of({"hosts": [{"address": "10.0.0.1", "role": "boss"},
                                  {"name": "a b", "address": "10.0.0.2", "port": 70000},
                                  {"name": "x"}]})
    assert "ssh.hosts.0.role" in errors and "ssh.hosts.1.name" in errors
    assert "ssh.hosts.1.port" in errors and "ssh.hosts.2.address" in errors


def test_one_head_and_names_that_differ():
    two_heads = errors_of({"hosts": [{"address": "10.0.0.1", "role": "head"},
                                     {"address": "10.0.0.2", "role": "head"}]})
    assert two_heads == {"ssh.hosts": ["2 hosts have role: head; one head only."]}
    same = errors_of({"hosts": [{"name": "a", "address": "10.0.0.1"},
                                {"name": "a", "address": "10.0.0.2"}]})
    assert same == {"ssh.hosts": ["Host names must differ: a."]}


def test_a_remote_dir_with_shell_characters_is_refused():
    errors = errors_of({"hosts": [{"address": "10.0.0.1"}], "remote_dir": "x; rm -rf ~"})
    assert list(errors) == ["ssh.remote_dir"]
