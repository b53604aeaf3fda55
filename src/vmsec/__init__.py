"""vmsec: which of my VMs can be broken into or broken out of, and why."""

import sys
from pathlib import Path

__version__ = "0.1.0"

# The data files shipped inside the package (catalogue metadata, profiles, compliance frameworks, EOL
# tables …). A path rather than importlib.resources: vmsec is always installed as files on disk, and
# importing importlib.resources pulls in zipfile, tempfile and shutil — a tenth of a quick scan's start-up.
DATA_DIR = Path(__file__).parent / "data"


def _import_msgspec_without_typing_extensions() -> None:
    """Import msgspec (every fact is a msgspec Struct) without letting it import typing_extensions.

    msgspec imports typing_extensions when it is installed (the service's packages bring it) only to
    use its get_type_hints, Required and NotRequired, which matter for typing_extensions' own TypedDict
    variants; vmsec's types use ``typing``'s, and msgspec falls back to those when the import fails.
    The module is ≈ 10 M instructions, a twentieth of a quick scan (docs/performance.md). Skipped when
    either module is already loaded: then there is nothing to save, and nothing is changed."""
    if "msgspec" in sys.modules or "typing_extensions" in sys.modules:
        return
    sys.modules["typing_extensions"] = None  # type: ignore[assignment]  # makes the import fail
    try:
        import msgspec  # noqa: F401
    finally:
        del sys.modules["typing_extensions"]  # importable again, for whoever needs it later


_import_msgspec_without_typing_extensions()
