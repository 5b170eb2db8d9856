"""The ssh platform's hosts, from the config or an Ansible INI inventory as seed 002 keeps one."""
from __future__ import annotations

import pytest

from cluster.platforms.ssh.inventory import from_config, parse_inventory
from core.errors import Invalid

SEED = """\
# the cluster's machines
[head]
ray-head ansible_host=10.0.0.10

[workers]
ray-w1 ansible_host=10.0.0.11
ray-w2 ansible_host=10.0.0.12 ansible_port=2222 ansible_user=admin  # another login

[workers:vars]
ansible_ssh_private_key_file=~/.ssh/workers

[all:vars]
ansible_user=ubuntu
ansible_ssh_private_key_file=~/.ssh/ray
"""


def test_an_ansible_inventory_gives_the_head_and_the_workers_with_their_logins():
    head, w1, w2 = parse_inventory(SEED)
    assert (head.name, head.address, head.role, head.user) == ("ray-head", "10.0.0.10", "head",
                                                                "ubuntu")
    assert head.identity_file == "~/.ssh/ray"  # [all:vars]
    assert (w1.role, w1.address, w1.port, w1.identity_file) == ("worker", "10.0.0.11", None,
                                                                "~/.ssh/workers")  # the group's
    assert (w2.user, w2.port) == ("admin", 2222)  # the line's own wins


def test_every_bad_line_is_said_at_once_with_where_it_is():
    bad = "ray-x\n[head]\nh1 ansible_host=1.2.3.4\nh2 stray\n[workers]\nw1 ansible_port=twenty\n"
    with pytest.raises(Invalid) as refused:
        parse_inventory(bad, "inventory.ini")
    message = str(refused.value)
    assert "inventory.ini:1: a host outside any group" in message
    assert "inventory.ini:4: 'stray' is not key=value" in message
    assert "[head] must list exactly one host (it lists 2)" in message
    with pytest.raises(Invalid, match="inventory.ini:2: ansible_port='twenty' is not a port"):
        parse_inventory("[head]\nh ansible_port=twenty\n", "inventory.ini")


def test_hosts_from_the_config_take_the_one_marked_head_else_the_first():
    hosts = from_config([{"address": "198.18.0.2"},
                         {"address": "198.18.0.3", "role": "head", "cpu": 8, "gpus": 1}])
    assert [(h.address, h.role) for h in hosts] == [("198.18.0.2", "worker"),
                                                    ("198.18.0.3", "head")]
    assert hosts[1].resources == {"cpu": 8, "gpus": 1} and hosts[0].name == "198.18.0.2"
    assert [h.role for h in from_config([{"address": "a"}, {"address": "b"}])] == ["head",
                                                                                    "worker"]
