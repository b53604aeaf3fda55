"""The tests and benchmarks need nothing but a clone of this repository (and the components the test
command installs): no test or benchmark names a path outside it, the copied third-party data is
complete and unmodified, and a missing component fails a CI run instead of skipping."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import datapaths
from datapaths import REPO, THIRD_PARTY

SCANNED = (REPO / "src", REPO / "tests", REPO / "benchmarks", REPO / "scripts")
SKIPPED_DIRS = {"__pycache__"}
THIS = Path(__file__).resolve()

# Text that names a place outside the repository. Built from parts so that this file does not match.
_SHARED = "sha" + "red"
ESCAPES = (
    (re.compile(r"\.\./" + _SHARED + r"\b"), "../" + _SHARED),
    (re.compile(r"/work/"), "an absolute path into the team's work folders"),
    (re.compile(r"""["']""" + _SHARED + r"""["']\s*/\s*[\w"'(]|[\w)\]]\s*/\s*["']""" + _SHARED + r"""["']"""),
     "a path joined with the team's data folder"),  # Path / <folder> / ..., not an XML attribute value
    (re.compile(r"\b(?:ROOT|REPO)\.parent\b"), "the parent of the repository"),
)
FILE_PARENTS = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]")


def _source_texts() -> list[tuple[Path, str]]:
    """Every text file under src/, tests/, benchmarks/ and scripts/, except the copied third-party data
    (checked below by its SHA256SUMS) and this file."""
    texts = []
    for top in SCANNED:
        for path in sorted(top.rglob("*")):
            if (not path.is_file() or path.resolve() == THIS or SKIPPED_DIRS & set(path.parts)
                    or any(path.is_relative_to(folder) for folder in THIRD_PARTY)):
                continue
            try:
                texts.append((path, path.read_text(encoding="utf-8")))
            except UnicodeDecodeError:
                continue  # binary sample data (images, archives) names no paths
    return texts


def escapes(path: Path, text: str) -> list[str]:
    """Where ``text`` (the source of the file at ``path``) names a path outside the repository."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for pattern, what in ESCAPES:
            if pattern.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {what}: {line.strip()}")
        for match in FILE_PARENTS.finditer(line):
            parents = path.resolve().parents
            level = int(match.group(1))
            if level >= len(parents) or not parents[level].is_relative_to(REPO):
                found.append(f"{path.relative_to(REPO)}:{number}: parents[{level}] is outside the "
                             f"repository: {line.strip()}")
    return found


def test_no_test_or_benchmark_names_a_path_outside_the_repository() -> None:
    texts = _source_texts()
    assert len(texts) > 100  # the walk really covers the tests
    found = [hit for path, text in texts for hit in escapes(path, text)]
    assert found == [], "read sample data through tests/datapaths.py instead:\n" + "\n".join(found)


@pytest.mark.parametrize("line", [
    'DATA = Path(__file__).resolve().parents[3] / "' + _SHARED + '" / "data" / "vuln"',
    "CORPUS = '../" + _SHARED + "/data/libvirt-9.0.0/tests'",
    'SHARED = ROOT.parent / "' + _SHARED + '"',
    "SCHEMA = Path('/work/" + _SHARED + "/data/schemas/sarif-schema-2.1.0.json')",
    'UP = Path(__file__).resolve().parents[3]',
])
def test_the_scan_catches_each_way_out(line: str) -> None:
    """Each of these lines, in tests/vulns/, names a path outside the repository."""
    assert escapes(REPO / "tests" / "vulns" / "test_example.py", line + "\n")


def test_paths_inside_the_repository_pass_the_scan() -> None:
    ok = ('ROOT = Path(__file__).resolve().parents[2]\nCORPUS = LIBVIRT_CORPUS / "qemuxml2argvdata"\n'
          'title = "No shared-memory (ivshmem) device"\n'
          "<access mode='" + _SHARED + "'/>\n")
    assert escapes(REPO / "tests" / "vulns" / "test_example.py", ok) == []


def test_every_data_path_is_inside_the_repository_and_exists() -> None:
    paths = {name: value for name, value in vars(datapaths).items() if isinstance(value, Path)}
    assert {"LIBVIRT_CORPUS", "VULN", "SARIF_SCHEMA"} <= set(paths)
    outside = [name for name, path in paths.items() if not path.resolve().is_relative_to(REPO)]
    absent = [name for name, path in paths.items() if not path.exists()]
    assert outside == [] and absent == []


@pytest.mark.parametrize("folder", THIRD_PARTY, ids=[f.name for f in THIRD_PARTY])
def test_third_party_data_is_complete_unmodified_and_documented(folder: Path) -> None:
    """Each copied folder keeps its PROVENANCE.md, states its licence in NOTICE.md, and matches its
    SHA256SUMS file for file: nothing missing, nothing edited, nothing added unlisted."""
    assert (folder / "PROVENANCE.md").is_file() and (folder / "NOTICE.md").is_file()
    listed = {}
    for line in (folder / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert present - {"SHA256SUMS", "NOTICE.md"} == set(listed)
    changed = [name for name, digest in listed.items()
               if hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest]
    assert changed == []


_NEEDS_A_MISSING_COMPONENT = '''
from components import require, require_module

def test_needs_root_and_more():
    require(False, "a thing this machine lacks", "the test drives it")

def test_needs_a_module():
    require_module("vmsec_no_such_module", "an uninstalled module")

def test_has_what_it_needs():
    require(True, "python", "always here")
'''


@pytest.mark.parametrize(("ci", "outcome"), [("true", "2 failed, 1 passed"), (None, "1 passed, 2 skipped")])
def test_a_missing_component_fails_in_ci_and_skips_elsewhere(tmp_path: Path, ci: str | None,
                                                             outcome: str) -> None:
    (tmp_path / "test_component.py").write_text(_NEEDS_A_MISSING_COMPONENT)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(REPO / "tests")
    if ci is not None:
        env["CI"] = ci
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs",
                           "--rootdir", str(tmp_path), str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert outcome in done.stdout, done.stdout + done.stderr
    assert "a thing this machine lacks is missing: the test drives it" in done.stdout
    assert "an uninstalled module is missing: import vmsec_no_such_module failed" in done.stdout
    assert done.returncode == (1 if ci else 0)
