"""dnf's package excludes, as dnf 4.14 applies them: the oracle is dnf itself (Debian's python3-dnf, run
by the system's python3). rpmbuild builds empty RPMs of the given names, versions and architectures;
dnf reads a dnf.conf, then dnf-automatic's configuration over it (its own ``AutomaticConfig``), and
says which of the packages its excludes hide. vmsec must hold back exactly those, or say that the
answer depends on the version of the update (an entry that names a version)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from components import require
from vmsec.facts import InstalledPackage
from vmsec.parsers.rpm_db import package_from_header, parse_header
from vmsec.parsers.system.dnf_excludes import Filters, dnf_held_back, ini_sections

SYSTEM_PYTHON = "/usr/bin/python3"
# (name, epoch, version, release, arch)
PACKAGES = [
    ("kernel-core", None, "5.14.0", "427.13.1.el9_4", "x86_64"),
    ("kernel-modules", None, "5.14.0", "427.13.1.el9_4", "x86_64"),
    ("openssh-server", None, "8.7p1", "38.el9", "x86_64"),
    ("vim-enhanced", 2, "8.2.2637", "20.el9", "x86_64"),
    ("tzdata", None, "2024a", "1.el9", "noarch"),
    ("python3-dnf", None, "4.14.0", "9.el9", "noarch"),
]

ORACLE = r"""
import json, sys, dnf, dnf.sack, dnf.automatic.main as automatic
job = json.load(sys.stdin)
base = dnf.Base()
base.conf.installroot = job["root"]
base.conf.config_file_path = job["dnf_conf"]
base.conf.read()
automatic.AutomaticConfig(job["automatic_conf"]).update_baseconf(base.conf)
base._sack = dnf.sack._build_sack(base)
packages = [base.sack.add_cmdline_package(p) for p in job["rpms"]]
base._setup_excludes_includes()
shown = {p.name for p in base.sack.query().available()}
json.dump(sorted(p.name for p in packages if p.name not in shown), sys.stdout)
"""

# (dnf.conf, automatic.conf, whether vmsec must call it unknown: an entry naming a version)
CASES: list[tuple[str, str, bool]] = [
    ("[main]\nexcludepkgs=kernel*\n", "", False),
    ("[main]\nexclude=kernel*\nexcludepkgs=vim*\n", "", False),  # one option, both keys add to it
    ("[main]\nexcludepkgs=kernel*, vim*\n openssh*\n", "", False),  # commas, a continuation line
    ("[main]\nexcludepkgs=kernel-core\tvim*\n", "", False),  # a tab does not separate
    ("[main]\nexcludepkgs=kernel*\nexcludepkgs=vim*\n", "", False),  # a repeated key: the last
    ("[main]\nExcludePkgs=kernel*\n", "", False),  # keys are case-sensitive
    ("[main]\nexclude=kernel*\nexcludepkgs=\n", "", False),  # an empty value empties the list
    ("[main]\nexcludepkgs=\nexclude=kernel*\n", "", False),
    ("[main]\nexcludepkgs=kernel*\n", "[base]\nexcludepkgs=vim*\n", False),  # dnf-automatic adds
    ("[main]\nexcludepkgs=kernel*\n", "[base]\nexcludepkgs=\n", False),  # … or empties
    ("[main]\nexcludepkgs=kernel*\ndisable_excludes=main\n", "", False),
    ("[main]\nexcludepkgs=kernel*\ndisable_excludes=*\n", "", False),  # '*' is not 'all'
    ("[main]\nexcludepkgs=kernel*\n", "[base]\ndisable_excludes=all\n", False),
    ("[main]\nincludepkgs=kernel*\n", "", False),  # everything else is hidden
    ("[main]\nincludepkgs=kernel*\nexcludepkgs=kernel-core\n", "", False),
    ("[main]\nexcludepkgs=*.noarch\n", "", False),  # name.arch
    ("[main]\nexcludepkgs=KERNEL*\n", "", False),  # globs are case-sensitive
    ("[main]\nexcludepkgs=kernel-[cm]*\n", "", False),
    ("[main]\nexcludepkgs=openssh-server # not now\n", "", False),  # an inline note is entries too
    ("[main]\n#excludepkgs=kernel*\n;exclude=vim*\n", "", False),
    ("[main]\nexcludepkgs=kernel-5*\n", "", False),  # no package is named kernel
    ("[main]\nexcludepkgs=openssh-server-8.7p1\n", "", True),  # a version: the update is another
    ("[main]\nexcludepkgs=*-5.14.0*\n", "", True),
    ("[main]\nexcludepkgs=vim-enhanced-2:8.2.2637-20.el9.x86_64\n", "", True),
    ("[main]\nexcludepkgs=openssh-server-9.9*\n", "", False),  # no installed version: holds none back
]


@pytest.fixture(scope="module")
def rpms(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    require(shutil.which("rpmbuild"), "rpmbuild", "rpm (apt)")
    top = tmp_path_factory.mktemp("rpmbuild")
    (top / "SPECS").mkdir()
    for name, epoch, version, release, arch in PACKAGES:
        spec = top / "SPECS" / f"{name}.spec"
        spec.write_text(f"Name: {name}\n{f'Epoch: {epoch}' if epoch else ''}\nVersion: {version}\n"
                        f"Release: {release}\nSummary: t\nLicense: MIT\nBuildArch: {arch}\n"
                        "%description\nt\n%files\n")
        subprocess.run(["rpmbuild", "--quiet", "-bb", "--define", f"_topdir {top}", "--define",
                        "_build_id_links none", str(spec)], check=True, capture_output=True, timeout=120)
    return sorted(top.glob("RPMS/*/*.rpm"))


def _installed(rpms: list[Path]) -> tuple[InstalledPackage, ...]:
    """The packages as vmsec's rpm database reader reads them: from each RPM's own header."""
    out = []
    for path in rpms:
        data = path.read_bytes()
        # lead (96 bytes), signature header (8-byte aligned), then the main header
        sig_il, sig_dl = int.from_bytes(data[104:108], "big"), int.from_bytes(data[108:112], "big")
        start = 96 + 16 + 16 * sig_il + sig_dl
        start += (8 - start % 8) % 8
        package = package_from_header(parse_header(data[start + 8:], str(path)))
        assert package is not None
        out.append(package)
    return tuple(out)


@pytest.mark.parametrize(("dnf_conf", "automatic_conf", "versioned"), CASES)
def test_held_back_as_dnf_hides_them(tmp_path: Path, rpms: list[Path], dnf_conf: str, automatic_conf: str,
                                     versioned: bool) -> None:
    require(subprocess.run([SYSTEM_PYTHON, "-c", "import dnf"], capture_output=True).returncode == 0,
            "dnf's Python API", "python3-dnf (apt)")
    (tmp_path / "dnf.conf").write_text(dnf_conf)
    (tmp_path / "automatic.conf").write_text(automatic_conf)
    (tmp_path / "root").mkdir()
    job = {"root": str(tmp_path / "root"), "dnf_conf": str(tmp_path / "dnf.conf"),
           "automatic_conf": str(tmp_path / "automatic.conf"), "rpms": [str(p) for p in rpms]}
    done = subprocess.run([SYSTEM_PYTHON, "-c", ORACLE], input=json.dumps(job), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    hidden = json.loads(done.stdout)

    main = Filters()
    for text, wanted in ((dnf_conf, "main"), (automatic_conf, "base")):
        for name, items in ini_sections(text, "x") or []:
            if name == wanted:
                main.add_section(items)
    got = dnf_held_back(main, {}, _installed(rpms), "dnf.conf")
    if versioned:
        assert got.unknown and not got.held and hidden, (got, hidden)
    else:
        assert not got.unknown, got
        assert list(got.held) == hidden and got.held_count == len(hidden), (got, hidden)


def test_the_rpm_reader_takes_the_architecture(rpms: list[Path]) -> None:
    assert {(p.name, p.arch) for p in _installed(rpms)} == {(n, a) for n, _e, _v, _r, a in PACKAGES}


def test_repository_excludes() -> None:
    """A package every enabled repository hides is held back; one some hide is unknown; a repository's
    includepkgs narrows only that repository."""
    packages = (InstalledPackage(name="kernel-core", version="5.14.0-1.el9", arch="x86_64", manager="rpm"),
                InstalledPackage(name="vim-enhanced", version="2:8.2-1.el9", arch="x86_64", manager="rpm"))

    def repo(text: str) -> Filters:
        f = Filters()
        f.add_section(ini_sections(f"[r]\n{text}\n", "x")[0][1])  # type: ignore[index]
        return f

    every = dnf_held_back(Filters(), {"baseos": repo("excludepkgs=kernel*"),
                                      "appstream": repo("exclude=kernel-core")}, packages, "repos")
    assert every.held == ("kernel-core",)
    some = dnf_held_back(Filters(), {"baseos": repo("excludepkgs=kernel*"), "appstream": repo("")}, packages,
                         "repos")
    assert some.unknown and "kernel-core" in some.unknown and not some.held
    vendor = dnf_held_back(Filters(), {"vendor": repo("includepkgs=agent*"), "baseos": repo("")}, packages,
                           "repos")
    assert not vendor.held and not vendor.unknown
    disabled = Filters()
    disabled.add_section([("disable_excludes", "baseos")])
    assert not dnf_held_back(disabled, {"baseos": repo("excludepkgs=kernel*")}, packages, "repos").held
