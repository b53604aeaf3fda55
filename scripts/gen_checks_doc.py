"""Write docs/checks.md and src/vmsec/data/catalog.json (the metadata `vmsec checks list|explain` and
the reporters read without importing a check) from the check catalogue, and
src/vmsec/data/profiles/builtin.json (the built-in TOML profiles, pre-parsed) from those files.

Run: .venv/bin/python scripts/gen_checks_doc.py   (tests/test_docs.py fails when either is stale)
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from vmsec.checks.catalog import default_catalog
from vmsec.profiles import BUILTIN_JSON, render_builtin_json

DOC = Path(__file__).resolve().parents[1] / "docs" / "checks.md"
CATALOG_JSON = Path(__file__).resolve().parents[1] / "src" / "vmsec" / "data" / "catalog.json"
COVERAGE = Path(__file__).resolve().parents[1] / "docs" / "reference-coverage.toml"
AREAS = {"HOST": "Host platform and isolation", "DMN": "libvirt daemons (management plane)",
         "QEMU": "QEMU driver (qemu.conf)", "DOM": "Domain XML, per VM", "NET": "Virtual networks",
         "STO": "Storage pools and secrets", "GST": "Guest operating systems (and the host's own OS)",
         "VULN": "Known vulnerabilities in installed packages",
         "LIVE": "What runs (live host and running guests: runtime facts)"}


def render() -> str:
    checks = default_catalog().checks
    lines = ["# Check catalogue", "",
             f"{len(checks)} checks. Generated from the code by `scripts/gen_checks_doc.py`; "
             "`vmsec checks explain ID` shows the same text. Severities are those of the default "
             "multi-tenant profile; `single-tenant` relaxes the cross-tenant ones "
             "(`src/vmsec/data/profiles/single-tenant.toml`).", "",
             "How verdicts are reached where a fact is left to a default, to qemu.conf, to another "
             "file or to another check — and the classes of wrong verdict that were fixed at their root "
             "— is in [verdicts.md](verdicts.md).", ""]
    for area, heading in AREAS.items():
        mine = [c for c in checks if c.id.split("-")[1] == area]
        if not mine:
            continue
        lines += [f"## {heading}", "", "| ID | Severity | Tags | Title |", "|---|---|---|---|"]
        lines += [f"| [{c.id}](#{c.id.lower()}) | {c.severity.value} | {', '.join(c.tags)} | {c.title} |"
                  for c in mine]
        lines.append("")
        for c in mine:
            lines += [f"### {c.id}", "", f"**{c.title}** — {c.severity.value}, scope {c.scope.value}", "",
                      c.rationale, "", f"*Remediation:* {c.remediation}", ""]
            if c.references:
                lines += [f"- {ref}" for ref in c.references] + [""]
    return "\n".join(lines + render_coverage())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_coverage() -> list[str]:
    """The reference catalogues' rows: which checks implement each, and why the others are declined."""
    rows = tomllib.loads(COVERAGE.read_text(encoding="utf-8"))["row"]
    done = [r for r in rows if "checks" in r]
    declined = [r for r in rows if "declined" in r]
    lines = ["## Reference coverage", "",
             f"vmsec's research catalogues (the guest OS catalogue and the virtualization-layer catalogue in "
             f"its reference notes) have {len(rows)} rows: {len(done)} are implemented by the checks below, "
             f"{len(declined)} are declined with their reason (next section). The mapping is data: "
             "`docs/reference-coverage.toml`.", "",
             "| Row | Title | vmsec checks | Note |", "|---|---|---|---|"]
    lines += [f"| {r['id']} | {_cell(r['title'])} | {', '.join(r['checks'])} | {_cell(r.get('note', ''))} |"
              for r in done]
    lines += ["", "## Declined", "",
              "Rows of the reference catalogues that no check implements, and why.", "",
              "| Row | Title | Why not |", "|---|---|---|"]
    lines += [f"| {r['id']} | {_cell(r['title'])} | {_cell(r['declined'])} |" for r in declined]
    return [*lines, ""]


def render_catalog_json() -> str:
    return default_catalog().index().to_json()


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    CATALOG_JSON.write_text(render_catalog_json(), encoding="utf-8")
    BUILTIN_JSON.write_text(render_builtin_json(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOC}, {CATALOG_JSON} and {BUILTIN_JSON}\n")
