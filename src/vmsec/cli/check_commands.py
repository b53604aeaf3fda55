"""``vmsec checks list|explain``: the catalogue, read from the shipped metadata (no check is imported)."""

from __future__ import annotations

from typing import Any

import click

from vmsec.cli import exitcodes
from vmsec.cli.main import die


@click.group()
def checks() -> None:
    """The check catalogue."""


@checks.command("list")
@click.option("--format", "fmt", type=click.Choice(["terminal", "json"]), default="terminal",
              show_default=True)
@click.option("--tag", "tags", multiple=True, help="Only checks with this tag (repeatable).")
def checks_list(fmt: str, tags: tuple[str, ...]) -> None:
    """List every check with its id, severity, tags and title."""
    from vmsec.checkinfo import packaged_index

    index = packaged_index().select(tags=tags or None)
    if fmt == "json":
        from vmsec.report.text import json_output

        click.echo(json_output([_check_dict(c) for c in index.checks]))
        return
    rows = [(c.id, c.severity.value, c.scope, ", ".join(c.tags), c.title) for c in index.checks]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(("ID", "Severity", "Scope"))]
    out = [f"{'ID':<{widths[0]}}  {'Severity':<{widths[1]}}  {'Scope':<{widths[2]}}  Title  [tags]"]
    out += [f"{i:<{widths[0]}}  {s:<{widths[1]}}  {sc:<{widths[2]}}  {title}  [{tags_text}]"
            for i, s, sc, tags_text, title in rows]
    click.echo("\n".join(out))
    click.echo(f"{len(rows)} checks")


@checks.command("explain")
@click.argument("check_id")
def checks_explain(check_id: str) -> None:
    """Show a check's rationale, remediation and references."""
    from vmsec.checkinfo import packaged_index

    spec = packaged_index().lookup(check_id)
    if spec is None:
        die(f"unknown check {check_id!r} (see 'vmsec checks list')", exitcodes.USAGE)
        return
    click.echo(f"{spec.id}  {spec.title}")
    click.echo(f"Severity: {spec.severity.value}   Scope: {spec.scope}   Tags: {', '.join(spec.tags)}")
    click.echo(f"\nWhy it matters\n{spec.rationale}\n\nRemediation\n{spec.remediation}")
    if spec.references:
        click.echo("\nReferences")
        for ref in spec.references:
            click.echo(f"  - {ref}")


def _check_dict(c: Any) -> dict[str, Any]:
    return {"id": c.id, "title": c.title, "severity": c.severity.value, "scope": c.scope,
            "tags": list(c.tags), "references": list(c.references), "rationale": c.rationale,
            "remediation": c.remediation}
