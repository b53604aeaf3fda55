"""dnf's package excludes, as dnf 4.14 applies them: the oracle is dnf itself (Debian's python3-dnf, run
by the system's python3). rpmbuild builds empty RPMs of the given names, versions and architectures;
dnf reads a dnf.conf, then dnf-automatic's configuration over it (its own ``AutomaticConfig``), and
says which of the packages its excludes hide. vmsec must hold back exactly those, or say that the
answer depends on the version of the update (an entry that names a version)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from components import require
from vmsec.facts import InstalledPackage
from vmsec.parsers.rpm_db import package_from_header, parse_header
from vmsec.parsers.system.dnf_excludes import Filters, dnf_held_back, glibc_glob, ini_sections

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

# (dnf.conf, automatic.conf, whether vmsec must call it unknown: an entry naming another version)
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
    # an entry matching the installed version hides the installed package: it is never upgraded
    ("[main]\nexcludepkgs=openssh-server-8.7p1\n", "", False),
    ("[main]\nexcludepkgs=*-5.14.0*\n", "", False),
    ("[main]\nexcludepkgs=vim-enhanced-2:8.2.2637-20.el9.x86_64\n", "", False),
    ("[main]\nexcludepkgs=vim-enhanced-2:*\n", "", False),
    ("[main]\nexcludepkgs=kernel-core-*\n", "", False),  # every version of kernel-core
    # an entry naming another version may hide the update: unknown
    ("[main]\nexcludepkgs=openssh-server-9.9*\n", "", True),
    ("[main]\nexcludepkgs=*el9_5*\n", "", True),
    # from a review (2026-12-06), each once a disagreement
    ('[main]\nexcludepkgs="kernel*"\n', "", False),  # one pair of outer quotes is dropped
    ("[main]\nexclude='kernel* vim*'\n", "", False),
    ("\ufeff[main]\nexclude=kernel*\n", "", False),  # a byte-order mark
    ("[main]\nexclude=foo-none\n  # kernel*\n", "", False),  # an indented '#' continues the value
    ("[main]\nexclude=openssh-[^c]*\n", "", False),  # glibc's fnmatch: '^' negates
    ("[main]\nexclude=kernel-[^c]*\n", "", False),
    ("[main]\nexclude=kernel-[[:alpha:]]*\n", "", False),
    ("[main]\nexclude=kern\\el*\n", "", False),  # a backslash escapes
    ("[main]\nexclude=kernel*\ndisable_excludes=main\n", "[base]\ndisable_excludes=r1\n", False),
    ("[main]\nexclude=vim*\nexcludepkgs=\n  kernel*\n", "", False),  # a first item empty: cleared
    ("[main]\nexclude=kernel*\n", "[base]\nexcludepkgs=None\n", False),
    ("[main]\nexclude=kernel*\n", "[base]\nexcludepkgs=,vim*\n", False),
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
        for name, items in ini_sections(text)[0]:
            if name == wanted:
                main.add_section(items)
    got = dnf_held_back(main, {}, _installed(rpms), "dnf.conf")
    if versioned:  # the installed versions are not hidden; the entry may hide an update
        assert got.unknown and not got.held and not hidden, (got, hidden)
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
        f.add_section(ini_sections(f"[r]\n{text}\n")[0][0][1])
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
    # from a review against dnf-automatic's own run (2026-12-06): the only repository's includepkgs
    # leaving packages out holds them back; a repository whose excludes are disabled still offers them
    only = dnf_held_back(Filters(), {"r1": repo("includepkgs=foo*")}, packages, "repos")
    assert only.held == ("kernel-core", "vim-enhanced")
    r1_off = Filters()
    r1_off.add_section([("disable_excludes", "r1")])
    both = {"r1": repo("excludepkgs=kernel*"), "r2": repo("excludepkgs=kernel*")}
    assert not dnf_held_back(r1_off, both, packages, "repos").held


def test_repositories_as_dnf_reads_them(tmp_path: Path) -> None:
    """dnf.conf's own repository sections count; a repeated id keeps its first definition; a .repo file
    whose name starts with a dot is not read; ``enabled=n`` is not a boolean libdnf takes (the
    repository stays enabled); a refused dnf.conf stops dnf-automatic."""
    from vmsec.collectors.reader import RootReader
    from vmsec.parsers.system.updates import read_auto_updates

    def root(files: dict[str, str]) -> RootReader:
        base = {"etc/dnf/automatic.conf": "[commands]\napply_updates = yes\n",
                "usr/lib/systemd/system/dnf-automatic.timer": "[Timer]\nOnCalendar=daily\n",
                "usr/lib/systemd/systemd": ""}
        for name, text in {**base, **files}.items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(text)
        link = tmp_path / "etc/systemd/system/timers.target.wants/dnf-automatic.timer"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to("/usr/lib/systemd/system/dnf-automatic.timer")
        return RootReader(str(tmp_path))

    packages = (InstalledPackage(name="dnf-automatic", version="4.14.0-9.el9", arch="noarch", manager="rpm"),
                InstalledPackage(name="kernel-core", version="5.14.0-1.el9", arch="x86_64", manager="rpm"))
    kernel_excluded = "[r1]\nbaseurl=http://r1/\nexcludepkgs=kernel*\n"
    reader = root({"etc/dnf/dnf.conf": "[main]\ngpgcheck=1\n[extra]\nbaseurl=http://x/\n",
                   "etc/yum.repos.d/r1.repo": kernel_excluded})
    assert read_auto_updates(reader, packages).held_back == ()  # [extra] offers the kernel
    reader = root({"etc/dnf/dnf.conf": "[main]\ngpgcheck=1\n",
                   "etc/yum.repos.d/a.repo": "[r1]\nbaseurl=http://r1/\n",
                   "etc/yum.repos.d/b.repo": kernel_excluded.replace("[r1]", "[r1]\n# again")})
    assert read_auto_updates(reader, packages).held_back == ()  # b.repo's [r1] is ignored
    (tmp_path / "etc/yum.repos.d/a.repo").unlink()
    (tmp_path / "etc/yum.repos.d/b.repo").unlink()
    reader = root({"etc/yum.repos.d/r1.repo": kernel_excluded,
                   "etc/yum.repos.d/.old.repo": "[r2]\nbaseurl=http://r2/\n",
                   "etc/yum.repos.d/r3.repo": "[r3]\nbaseurl=http://r3/\nenabled=n\nexcludepkgs=kernel*\n"})
    assert read_auto_updates(reader, packages).held_back == ("kernel-core",)
    reader = root({"etc/dnf/dnf.conf": "[main]\ninstallonly_limit: 3\n"})
    assert "refuses /etc/dnf/dnf.conf" in read_auto_updates(reader, packages).filters_error


PLUGINS_CORE = Path(__file__).resolve().parents[2] / ".cache/dnf-plugins-core/root/usr/lib/python3" \
    / "dist-packages"
VERSIONLOCK = PLUGINS_CORE / "dnf-plugins/versionlock.py"
# (name, epoch, installed version-release, the update's version-release)
LOCKED_PACKAGES = [
    ("kernel-core", None, ("5.14.0", "427.13.1.el9_4"), ("5.14.0", "503.11.1.el9_5")),
    ("kernel-modules", None, ("5.14.0", "427.13.1.el9_4"), ("5.14.0", "503.11.1.el9_5")),
    ("openssh-server", None, ("8.7p1", "38.el9"), ("8.7p1", "43.el9")),
    ("vim-enhanced", 2, ("8.2.2637", "20.el9"), ("8.2.2637", "21.el9")),
]
# versionlock.list lines: (line, what vmsec must say of each package: held, uncertain, or None)
LOCK_CASES: list[tuple[str, dict[str, str | None]]] = [
    ("kernel-core-0:5.14.0-427.13.1.el9_4.*", {"kernel-core": "held"}),  # `dnf versionlock add`'s form
    ("kernel-core-5.14.0-427.13.1.el9_4", {"kernel-core": "held"}),
    ("kernel-core", {}),  # a bare name: every version is locked, none excluded
    ("!kernel-core", {"kernel-core": "held"}),  # every version excluded
    ("!kernel-core-0:5.14.0-503.11.1.el9_5.*", {"kernel-core": "uncertain"}),  # one (the next) version
    ("kernel-core-0:5.14.0-503.11.1.el9_5.*", {"kernel-core": "uncertain"}),  # locked at another version
    ("vim-enhanced-2:8.2.2637-20.el9.*", {"vim-enhanced": "held"}),
    ("kernel*-0:5.14.0-427.13.1.el9_4.*", {"kernel-core": "held", "kernel-modules": "held"}),
    ("openssh-server-8.7p1-*", {"openssh-server": "uncertain"}),  # every release of 8.7p1: 43 too
    ("openssh-server-8.7p1", {"openssh-server": "uncertain"}),
    ("# kernel-core-0:5.14.0-427.13.1.el9_4.*", {}),
]

LOCK_ORACLE = r"""
import importlib.util, json, sys, dnf, dnf.sack
job = json.load(sys.stdin)
sys.path.insert(0, job["plugins_core"])  # dnfpluginscore, beside the plugin
spec = importlib.util.spec_from_file_location("versionlock", job["plugin"])
versionlock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(versionlock)
versionlock.locklist_fn = job["locklist"]
base = dnf.Base()
base.conf.installroot = job["root"]
base._sack = dnf.sack._build_sack(base)
updates = [base.sack.add_cmdline_package(p) for p in job["updates"]]
versionlock.VersionLock(base, None).sack()  # not from a command line: locking is on, as in dnf-automatic
shown = {str(p) for p in base.sack.query().available()}
json.dump(sorted(p.name for p in updates if str(p) not in shown), sys.stdout)
"""


def _build(top: Path, name: str, epoch: int | None, version: str, release: str) -> Path:
    spec = top / f"{name}-{version}-{release}.spec"
    spec.write_text(f"Name: {name}\n{f'Epoch: {epoch}' if epoch else ''}\nVersion: {version}\n"
                    f"Release: {release}\nSummary: t\nLicense: MIT\nBuildArch: x86_64\n%description\nt\n"
                    "%files\n")
    subprocess.run(["rpmbuild", "--quiet", "-bb", "--define", f"_topdir {top}", "--define",
                    "_build_id_links none", str(spec)], check=True, capture_output=True, timeout=120)
    return next(top.glob(f"RPMS/*/{name}-{version}-{release}.*.rpm"))


@pytest.mark.parametrize(("line", "expected"), LOCK_CASES)
def test_version_locks_as_the_versionlock_plugin_applies_them(tmp_path: Path, line: str,
                                                               expected: dict[str, str | None]) -> None:
    """The updates (one newer release of each package) the plugin's sack hook hides: each package vmsec
    holds back must have its update hidden, and an update hidden must be held back or uncertain."""
    require(shutil.which("rpmbuild"), "rpmbuild", "rpm (apt)")
    require(VERSIONLOCK.exists(), "dnf's versionlock plugin (unpacked)", f"{VERSIONLOCK} (scripts/test.sh)")
    updates = [_build(tmp_path, n, e, *new) for n, e, _old, new in LOCKED_PACKAGES]
    (tmp_path / "versionlock.list").write_text(line + "\n")
    (tmp_path / "root").mkdir()
    job = {"plugin": str(VERSIONLOCK), "plugins_core": str(PLUGINS_CORE),
           "locklist": str(tmp_path / "versionlock.list"), "root": str(tmp_path / "root"),
           "updates": [str(p) for p in updates]}
    done = subprocess.run([SYSTEM_PYTHON, "-c", LOCK_ORACLE], input=json.dumps(job), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    hidden = set(json.loads(done.stdout))
    entries = [e.strip() for e in [line] if e.strip() and not e.startswith("#")]
    for name, epoch, (version, release), _new in LOCKED_PACKAGES:
        installed = InstalledPackage(name=name, version=f"{f'{epoch}:' if epoch else ''}{version}-{release}",
                                     arch="x86_64", manager="rpm")
        got = dnf_held_back(Filters(), {}, (installed,), "dnf.conf", entries, "versionlock.list")
        state = "held" if got.held else "uncertain" if got.unknown else None
        assert state == expected.get(name), (name, got)
        assert (state == "held") <= (name in hidden), (name, hidden)
        assert (name in hidden) <= (state is not None), (name, hidden)


def test_a_missing_lock_list_stops_the_plugin(tmp_path: Path) -> None:
    """The plugin's sack hook raises dnf.exceptions.Error when its list cannot be read, and
    dnf-automatic's main returns 1 on that error before it upgrades anything (dnf/automatic/main.py):
    VMS-GST-076's fixture dnf-versionlock-without-its-list.FAIL is that configuration."""
    require(VERSIONLOCK.exists(), "dnf's versionlock plugin (unpacked)", f"{VERSIONLOCK} (scripts/test.sh)")
    (tmp_path / "root").mkdir()
    job = {"plugin": str(VERSIONLOCK), "plugins_core": str(PLUGINS_CORE), "locklist": str(tmp_path / "none"),
           "root": str(tmp_path / "root"), "updates": []}
    done = subprocess.run([SYSTEM_PYTHON, "-c", LOCK_ORACLE], input=json.dumps(job), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode != 0 and "dnf.exceptions.Error" in done.stderr, done.stderr[-2000:]


INI_TEXTS = [
    "[main]\nexcludepkgs=kernel*\n",
    '[main]\nexcludepkgs="kernel*"\nb=\'x y\'\nc="unbalanced\n',
    "\ufeff[main]\na=1\n",
    "[main]\na=1\n  # more\n\tb\nc = 2 \n",
    "[main]\na=1\na=2\nb=3\n[main]\nc=4\n[r1]\nname=x\n",
    "[main]\ninstallonly_limit: 3\n",  # no '='
    "[main]\n  gpgcheck=0\nexclude=kernel*\n",  # a continuation with nothing above
    "[main]\na=1\n\n  b\n",  # … after an empty line
    "[main]\n# c\n  b\n",  # … after a comment
    "[main\na=1\n",
    "[main] trailing\na=1\n", "[main] x\na=1\n", "[main] # note\na=1\n", "[]\na=1\n", "[ main ]\na=1\n",
    "a=1\n[main]\n",  # before any section
    "[main]\r\na=1\r\n",
    "[main]\n;x=1\n#y=2\n  \nz=3\n",
]


def test_ini_files_as_libdnf_reads_them(tmp_path: Path) -> None:
    """libdnf's own ConfigParser (what dnf and dnf-automatic read their files with) is the oracle:
    whether it refuses a file, and else each section's keys and values in order."""
    require(subprocess.run([SYSTEM_PYTHON, "-c", "import libdnf"], capture_output=True).returncode == 0,
            "libdnf's Python API", "python3-dnf (apt)")
    paths = []
    for i, text in enumerate(INI_TEXTS):
        (tmp_path / f"{i}.conf").write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / f"{i}.conf"))
    oracle = r"""
import json, sys, libdnf
out = []
for path in json.load(sys.stdin):
    parser = libdnf.conf.ConfigParser()
    try:
        parser.read(path)
    except RuntimeError:
        out.append(None)
        continue
    data = parser.getData()
    # comment and blank lines are kept as "#N" pseudo-keys (to write the file back): not settings
    out.append([[name, [[k, data[name][k]] for k in data[name] if not k.startswith("#")]] for name in data])
json.dump(out, sys.stdout)
"""
    done = subprocess.run([SYSTEM_PYTHON, "-c", oracle], input=json.dumps(paths), capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    for text, expected in zip(INI_TEXTS, json.loads(done.stdout), strict=True):
        sections, refused = ini_sections(text)
        if expected is None:
            assert refused and not sections, (text, sections)
        else:
            assert not refused, (text, refused)
            assert [[n, [list(kv) for kv in items]] for n, items in sections] == expected, text


@pytest.mark.parametrize(("pattern", "name", "matches"), [
    ("openssh-[^c]*", "openssh-server", True), ("openssh-[^s]*", "openssh-server", False),
    ("kernel-[[:alpha:]]*", "kernel-core", True), ("kernel-[[:digit:]]*", "kernel-core", False),
    ("kern\\el*", "kernel-core", True), ("a\\*", "a*", True), ("a\\*", "ab", False), ("[", "[", True),
])
def test_glibc_globs_in_python(pattern: str, name: str, matches: bool) -> None:
    from fnmatch import fnmatchcase

    translated = glibc_glob(pattern)
    assert translated is not None and fnmatchcase(name, translated) is matches


def test_a_glob_vmsec_cannot_spell_is_unknown() -> None:
    main = Filters()
    main.add_section([("exclude", "kernel-[[:punct:]]*")])
    package = InstalledPackage(name="kernel-core", version="5.14.0-1.el9", arch="x86_64", manager="rpm")
    assert dnf_held_back(main, {}, (package,), "dnf.conf").unknown


def test_every_architecture_of_a_name_is_judged() -> None:
    """glibc.x86_64 and glibc.i686 installed, ``exclude=glibc.x86_64``: dnf upgrades neither (the
    review's run of dnf-automatic: the architectures of one name move in lockstep)."""
    main = Filters()
    main.add_section([("exclude", "glibc.x86_64")])
    packages = tuple(InstalledPackage(name="glibc", version="2.34-100.el9", arch=a, manager="rpm")
                     for a in ("x86_64", "i686"))
    got = dnf_held_back(main, {}, packages, "dnf.conf")
    assert got.held == ("glibc.i686", "glibc.x86_64")


def test_hostile_entries_and_names_are_bounded() -> None:
    main = Filters()
    main.add_section([("exclude", " ".join("*" + "a?" * 100 + f"[b{n}]" for n in range(200)))])
    packages = tuple(InstalledPackage(name="a" * 250 + f"{n:03}", version="1-1", arch="x86_64", manager="rpm")
                     for n in range(1000))
    started = time.process_time()
    got = dnf_held_back(main, {}, packages, "dnf.conf")
    assert time.process_time() - started < 5 and got.unknown and "too many" in got.unknown


def test_a_name_arch_reading_that_may_name_an_uninstalled_package_is_unknown() -> None:
    """``exclude=python3.*``: dnf reads it as name ``python3``, any architecture, when such a package
    exists — installed or only in a repository — and hides only that; vmsec cannot see the
    repository, so python3.11 is unknown, never "held". An unsubstituted variable matches nothing."""
    packages = tuple(InstalledPackage(name=n, version="3.11.7-1.el9", arch="x86_64", manager="rpm")
                     for n in ("python3.11", "python3.11-libs"))
    main = Filters()
    main.add_section([("exclude", "python3.*")])
    got = dnf_held_back(main, {}, packages, "dnf.conf")
    assert not got.held and "python3.11" in got.unknown
    main = Filters()
    main.add_section([("exclude", "*el$releasever")])
    assert dnf_held_back(main, {}, packages, "dnf.conf") == dnf_held_back(Filters(), {}, packages, "dnf.conf")
