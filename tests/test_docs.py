"""Documentation generated from code stays in step with it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_checks_doc_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_checks_doc", ROOT / "scripts" / "gen_checks_doc.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "checks.md").read_text(encoding="utf-8") == module.render(), (
        "docs/checks.md is stale: run .venv/bin/python scripts/gen_checks_doc.py")


def test_packaged_catalog_metadata_is_current() -> None:
    """Reporters and `vmsec checks` read the shipped metadata instead of importing checks: it must be
    exactly what the check modules declare."""
    import json

    from vmsec.checkinfo import CheckIndex, CheckInfo
    from vmsec.checks.catalog import default_catalog

    shipped = (ROOT / "src" / "vmsec" / "data" / "catalog.json").read_text(encoding="utf-8")
    live = default_catalog().index()
    assert shipped == live.to_json(), (
        "src/vmsec/data/catalog.json is stale: run .venv/bin/python scripts/gen_checks_doc.py")
    assert CheckIndex(CheckInfo.from_dict(d) for d in json.loads(shipped)).checks == live.checks


def test_builtin_profiles_ship_pre_parsed_and_current() -> None:
    """Scans load built-in profiles from builtin.json (no tomllib): it must hold exactly what the
    TOML files say, and loading one by name must give the profile its TOML gives."""
    from vmsec.profiles import (
        BUILTIN_DIR,
        BUILTIN_JSON,
        builtin_profiles,
        load_profile,
        parse_profile,
        render_builtin_json,
    )

    assert BUILTIN_JSON.read_text(encoding="utf-8") == render_builtin_json(), (
        "src/vmsec/data/profiles/builtin.json is stale: run .venv/bin/python scripts/gen_checks_doc.py")
    assert builtin_profiles() == ("multi-tenant", "single-tenant")
    for name in builtin_profiles():
        toml = (BUILTIN_DIR / f"{name}.toml").read_text(encoding="utf-8")
        assert load_profile(name) == parse_profile(toml, name)


def test_writing_checks_example_is_the_real_check() -> None:
    """The example in docs/writing-checks.md is quoted verbatim from the code, so it cannot go stale."""
    doc = (ROOT / "docs" / "writing-checks.md").read_text(encoding="utf-8")
    example = doc.split("```python\n", 1)[1].split("```", 1)[0]
    first, _, body = example.partition("\n")
    assert first.startswith("# src/vmsec/checks/")
    source = (ROOT / first[2:].split()[0]).read_text(encoding="utf-8")
    assert body.strip() and body in source


def test_every_docs_file_the_project_names_exists() -> None:
    """Comments, help texts and documents point readers to docs/…: a pointer to a missing file is a
    dead end (the single-tenant profile pointed to a docs/profiles.md that never existed)."""
    named: dict[str, set[str]] = {}
    for top in ("src", "scripts", "benchmarks", "docs", "README.md"):
        paths = [ROOT / top] if (ROOT / top).is_file() else sorted((ROOT / top).rglob("*"))
        for path in paths:
            if path.suffix not in {".py", ".md", ".toml", ".sh", ".txt", ".html"} or not path.is_file():
                continue
            for ref in re.findall(r"\bdocs/[A-Za-z0-9_.-]+\.[a-z]+\b", path.read_text(encoding="utf-8")):
                named.setdefault(ref, set()).add(str(path.relative_to(ROOT)))
    assert named, "the scan of the project found no docs/ references at all"
    missing = {ref: sorted(where) for ref, where in named.items() if not (ROOT / ref).is_file()}
    assert not missing, missing
