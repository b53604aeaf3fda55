"""Simulated hypervisors for the fleet and monitor tests and benchmarks: directories of domain XML and
libvirt test-driver node files, made from the in-repo node (tests/data/libvirt/node-risky.xml), whose
three domains carry risky settings (open VNC, PCI passthrough, no confinement …) so every simulated
domain has real findings.

Tests and benchmarks import this module by name (``tests`` is on pytest's ``pythonpath``; benchmarks
put ``tests`` on ``sys.path``).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from datapaths import DATA

NODE = DATA / "libvirt" / "node-risky.xml"
_DOMAIN = re.compile(r"<domain type='test'[^>]*>.*?</domain>", re.S)
_HEAD = re.compile(r"^(.*?)(?=\s*<domain )", re.S)


def domain_templates() -> list[str]:
    """The node's domain elements (running ones only: the runstate namespace needs the node file)."""
    return [d for d in _DOMAIN.findall(NODE.read_text(encoding="utf-8")) if "test:runstate" not in d]


def domain_xml(template: str, name: str) -> str:
    """``template`` renamed, with a UUID derived from the name (stable across runs)."""
    xml = re.sub(r"<name>[^<]*</name>", f"<name>{name}</name>", template, count=1)
    return re.sub(r"<uuid>[^<]*</uuid>", f"<uuid>{uuid.uuid5(uuid.NAMESPACE_URL, name)}</uuid>", xml, count=1)


def write_xml_hypervisor(directory: Path, domains: int, prefix: str = "vm") -> Path:
    """A directory of ``domains`` domain XML files (what `vmsec scan xml DIR` reads)."""
    directory.mkdir(parents=True, exist_ok=True)
    templates = domain_templates()
    for n in range(domains):
        name = f"{prefix}{n:04d}"
        (directory / f"{name}.xml").write_text(domain_xml(templates[n % len(templates)], name),
                                               encoding="utf-8")
    return directory


def write_test_node(path: Path, domains: int, prefix: str = "vm") -> str:
    """A test-driver node file with ``domains`` domains; returns its ``test:///PATH`` URI."""
    text = NODE.read_text(encoding="utf-8")
    head = _HEAD.match(text)
    assert head is not None
    templates = domain_templates()
    body = "\n".join(domain_xml(templates[n % len(templates)], f"{prefix}{n:04d}") for n in range(domains))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head.group(1)}\n{body}\n</node>\n", encoding="utf-8")
    return f"test://{path.resolve()}"
