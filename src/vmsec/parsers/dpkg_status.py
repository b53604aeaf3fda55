"""/var/lib/dpkg/status → the packages that are installed.

A stanza is a block of ``Field: value`` lines (continuation lines start with a space or tab), and
stanzas are separated by blank lines. A package is installed when the third word of ``Status:`` is
``installed`` — whatever the selection is (``install``, ``hold``, or ``deinstall`` for a package
marked for removal that is still on disk); a ``hold`` selection (``apt-mark hold``) is kept, since
apt then never upgrades the package. ``Source:`` may be ``name`` or ``name (version)``; both
are kept: advisories are filed against the source package and its version (binNMUs and binary-only
epochs make the binary version differ).
"""

from __future__ import annotations

from vmsec.errors import ErrorKind, ReadError
from vmsec.facts import InstalledPackage

MAX_STANZAS = 200_000


def _stanza_fields(lines: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in lines:
        if line[:1] in (" ", "\t"):
            continue  # continuation of a multi-line field (Description, Conffiles): not needed
        name, sep, value = line.partition(":")
        if sep:
            fields.setdefault(name.strip().lower(), value.strip())
    return fields


def _package(fields: dict[str, str], origin: str) -> InstalledPackage | None:
    status = fields.get("status", "").split()
    name = fields.get("package")
    version = fields.get("version")
    if len(status) != 3 or status[2] != "installed" or not name or not version:
        return None
    source_field = fields.get("source", "")
    source = source_field.split(" ", 1)[0] or None
    source_version = None
    if "(" in source_field and source_field.endswith(")"):
        source_version = source_field[source_field.index("(") + 1:-1].strip() or None
    return InstalledPackage(name=name, version=version, source=source, manager="dpkg",
                            source_version=source_version, arch=fields.get("architecture") or None,
                            held=status[0] == "hold")


def parse_dpkg_status(text: str, origin: str) -> tuple[InstalledPackage, ...]:
    """Installed packages in a dpkg status file, in file order.

    Raises :class:`ReadError` naming ``origin`` when the file has more than 200,000 stanzas.
    """
    packages: list[InstalledPackage] = []
    stanzas = 0
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.strip():
            block.append(line)
            continue
        if not block:
            continue
        stanzas += 1
        if stanzas > MAX_STANZAS:
            raise ReadError(origin, f"more than {MAX_STANZAS} package stanzas", ErrorKind.TOO_LARGE)
        package = _package(_stanza_fields(block), origin)
        if package is not None:
            packages.append(package)
        block = []
    return tuple(packages)
