"""Where the tests' and benchmarks' data lives: in this repository, and nowhere else.

Every test and benchmark names its sample data through these constants, so a clone of the repository
is all they need (``tests/test_standalone.py`` fails if a test or benchmark names a path outside it).
Third-party data (libvirt's test corpus, advisory records, the SARIF schema) was copied in with its
PROVENANCE.md, a NOTICE.md giving its licence, and a SHA256SUMS list.

Tests import this module by name (``tests`` is on pytest's ``pythonpath``); benchmarks put ``tests``
on ``sys.path`` first.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"

# libvirt 9.0.0's own test XML and documented default configuration files (LGPL-2.1-or-later).
LIBVIRT = DATA / "libvirt-9.0.0"
LIBVIRT_CORPUS = LIBVIRT / "tests"
LIBVIRT_CONF = LIBVIRT / "conf"

# Advisory feeds, package inventories and version-comparison vectors (terms per file in NOTICE.md).
VULN = DATA / "vuln"
VULN_VECTORS = VULN / "vectors"
VULN_INSTALLED = VULN / "installed"
DISTRO_EOL = VULN / "distro-eol"

# libvirt's polkit action definitions and Debian's vendor rule (LGPL-2.1-or-later), for real polkitd.
LIBVIRT_POLKIT = DATA / "libvirt-polkit-9.0.0"
# polkit rules fixtures: one root folder per case (etc/polkit-1/rules.d, usr/share/polkit-1/rules.d).
POLKIT_CASES = DATA / "polkit"

# Official output schemas.
SCHEMAS = DATA / "schemas"
SARIF_SCHEMA = SCHEMAS / "sarif-schema-2.1.0.json"

# The folders copied from elsewhere: each holds PROVENANCE.md, NOTICE.md and SHA256SUMS.
THIRD_PARTY = (LIBVIRT, VULN, SCHEMAS, LIBVIRT_POLKIT)
