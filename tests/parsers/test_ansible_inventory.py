"""Ansible inventories as Ansible reads them: groups, children, variables and their precedence, ranges."""

from __future__ import annotations

import pytest

from vmsec.errors import ConfigError
from vmsec.parsers.ansible_inventory import expand_range, parse_inventory

INI = """\
# guests of two hypervisors
bastion.example.com:2222 ansible_user=ops

[hv1]
web[01:03] ansible_host=10.0.1.1
db01 ansible_host=10.0.1.9 ansible_port=2200 ansible_user=dbadmin

[hv1:vars]
vmsec_hypervisor=hv1.example.com
ansible_user=admin

[hv2]
db-[a:b].example.com vmsec_sudo=yes

[hv2:vars]
vmsec_hypervisor=hv2.example.com

[prod:children]
hv1
hv2

[prod:vars]
ansible_ssh_private_key_file=~/.ssh/prod_ed25519
ansible_user=produser
"""

YAML = """\
all:
  vars:
    ansible_user: auditor
  children:
    hv1:
      vars:
        vmsec_hypervisor: hv1.example.com
      hosts:
        web01:
          ansible_host: 10.0.1.1
        web02:
    hv2:
      vars:
        vmsec_hypervisor: hv2.example.com
      hosts:
        db01: {ansible_port: 2200, ansible_user: "{{ lookup('env', 'USER') }}"}
"""


def test_ini_groups_children_and_precedence() -> None:
    hosts = {h.alias: h for h in parse_inventory(INI, "hosts.ini")}
    assert sorted(hosts) == ["bastion.example.com:2222", "db-a.example.com", "db-b.example.com", "db01",
                             "web01", "web02", "web03"]
    bastion = hosts["bastion.example.com:2222"]
    assert (bastion.host, bastion.port, bastion.user, bastion.hypervisor) == ("bastion.example.com", 2222,
                                                                              "ops", None)
    web = hosts["web02"]
    # the child group's vars override the parent's; a host's override both
    assert (web.host, web.user, web.hypervisor, web.identity) == ("10.0.1.1", "admin", "hv1.example.com",
                                                                  "~/.ssh/prod_ed25519")
    db = hosts["db01"]
    assert (db.host, db.port, db.user) == ("10.0.1.9", 2200, "dbadmin")
    dba = hosts["db-a.example.com"]
    assert dba.sudo and dba.hypervisor == "hv2.example.com" and dba.user == "produser"


def test_yaml_inventory_and_templates_are_not_evaluated() -> None:
    hosts = {h.alias: h for h in parse_inventory(YAML, "hosts.yml")}
    assert sorted(hosts) == ["db01", "web01", "web02"]
    assert hosts["web02"].host == "web02" and hosts["web02"].user == "auditor"
    assert hosts["web01"].hypervisor == "hv1.example.com"
    assert hosts["db01"].port == 2200 and hosts["db01"].user is None  # a Jinja template is not run


@pytest.mark.parametrize(("pattern", "expected"), [
    ("web[01:03]", ["web01", "web02", "web03"]),
    ("db-[a:c]", ["db-a", "db-b", "db-c"]),
    ("n[0:10:5]", ["n0", "n5", "n10"]),
    ("r[1:2]c[1:2]", ["r1c1", "r1c2", "r2c1", "r2c2"]),
    ("plain", ["plain"]),
])
def test_host_ranges(pattern: str, expected: list[str]) -> None:
    assert expand_range(pattern) == expected


@pytest.mark.parametrize("text", [
    "[g]\nweb[1:999999999]\n",  # a range that would not end
    "[g:vars]\nnot-an-assignment\n",
    "[g:things]\nx\n",
    "[g]\nweb01 ansible_port=http\n",
    "all:\n  hosts: [a, b]\n",
])
def test_bad_inventories_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_inventory(text, "bad")
