"""vmsec: which of my VMs can be broken into or broken out of, and why."""

from pathlib import Path

__version__ = "0.1.0"

# The data files shipped inside the package (catalogue metadata, profiles, compliance frameworks, EOL
# tables …). A path rather than importlib.resources: vmsec is always installed as files on disk, and
# importing importlib.resources pulls in zipfile, tempfile and shutil — a tenth of a quick scan's start-up.
DATA_DIR = Path(__file__).parent / "data"
