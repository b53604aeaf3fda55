"""Every XML file of libvirt 9.0's own test suite goes through the xml collector and every check.

The corpus holds deliberately odd and invalid files. None may crash the collector or a check: a file
that cannot be used is a clear collection record, and no check may end in ERROR.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from datapaths import LIBVIRT_CORPUS as CORPUS
from vmsec.checks.catalog import default_catalog
from vmsec.collectors.xml import collect_xml
from vmsec.engine import run_checks
from vmsec.facts import Inventory
from vmsec.findings import Status


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return collect_xml([str(CORPUS)])


def test_every_file_is_read_or_clearly_refused(inventory: Inventory) -> None:
    all_files = sorted(str(p) for p in CORPUS.rglob("*.xml"))
    assert len(all_files) > 1900
    assert sorted(r.source for r in inventory.records) == all_files
    for record in inventory.errors:
        assert record.what == "libvirt XML"
        assert record.reason and "Traceback" not in record.reason
    # The only files refused are storage *volume* documents, which vmsec does not model.
    refused = Counter(Path(r.source).parent.name for r in inventory.errors)
    volumes = len(list((CORPUS / "storagevolxml2xmlin").glob("*.xml")))
    assert refused == Counter({"storagevolxml2xmlin": volumes})
    assert {r.reason for r in inventory.errors} == {
        "not a libvirt domain, network, filter, pool or secret document (root element <volume>)"}


def test_every_kind_is_parsed(inventory: Inventory) -> None:
    argv = {str(p) for p in (CORPUS / "qemuxml2argvdata").glob("*.xml")}
    assert argv <= {d.origin for d in inventory.domains}
    assert len(inventory.networks) == len(list((CORPUS / "networkxml2xmlin").glob("*.xml")))
    assert inventory.nwfilters is not None
    assert len(inventory.nwfilters) == len(list((CORPUS / "nwfilterxml2xmlin").glob("*.xml")))
    assert len(inventory.pools) == len(list((CORPUS / "storagepoolxml2xmlin").glob("*.xml")))
    assert inventory.secrets is not None and len(inventory.secrets) == 7


def test_no_check_errors_on_the_corpus(inventory: Inventory) -> None:
    result = run_checks(inventory, default_catalog())
    assert result.checks_run == len(default_catalog().checks)
    errors = [f"{f.check_id} {f.target.name}: {f.message}" for f in result.findings
              if f.status is Status.ERROR]
    assert not errors, errors[:20]
    # The checks did look at the domains: the corpus is full of things they must flag.
    assert any(f.status is Status.FAIL for f in result.findings)
