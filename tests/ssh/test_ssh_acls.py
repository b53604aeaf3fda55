"""ACLs over SSH, judged: a real Debian 12 guest (an overlay on the cached root) whose /etc/shadow keeps
its 0640 root:shadow mode but has an ACL letting uid 1000 read it. The mode alone says PASS; what the
guest's tools can tell decides the verdict:

- its getfacl (here copied in from this machine: a minimal Debian lacks package acl) → FAIL, naming
  the reader;
- no getfacl: ls still marks the file (+) → UNKNOWN, saying why; a file ls does not mark → PASS;
- SFTP only (no command runs) → UNKNOWN for every file whose mode is fine: SFTP shows no ACLs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import sshd
from components import require
from posix_acls import set_acl
from vmsec.collectors.remote import NO_GETFACL
from vmsec.findings import Status
from vmsec.pipeline import ScanOptions, scan

pytestmark = pytest.mark.ssh


def _verdicts(server: sshd.SshServer) -> dict[str, tuple[Status, str]]:
    try:
        result = scan([server.spec(name="acl-guest")], ScanOptions(checks=("VMS-GST-140",)))
    finally:
        server.stop()
    return {f.subject: (f.status, f.message) for f in result.findings if f.check_id == "VMS-GST-140"}


def _guest(debian_root: Path, tmp_path: Path, *, getfacl: bool, extra: str = "") -> sshd.SshServer:
    upper = tmp_path / "overlay" / "upper"
    (upper / "etc").mkdir(parents=True)
    shadow = upper / "etc" / "shadow"
    shutil.copy2(debian_root / "etc" / "shadow", shadow)
    original = os.stat(debian_root / "etc" / "shadow")
    os.chown(shadow, original.st_uid, original.st_gid)
    set_acl(shadow, "user:1000:r--")
    if getfacl:
        tool = shutil.which("getfacl")
        require(tool, "getfacl", "package acl (scripts/test.sh installs it)")
        assert tool is not None
        (upper / "usr" / "bin").mkdir(parents=True)
        shutil.copy2(tool, upper / "usr" / "bin" / "getfacl")  # Debian 12's: the guest has its libacl
    return sshd.start_sshd(tmp_path / "sshd", root=debian_root, overlay=tmp_path / "overlay", extra=extra)


def test_a_guest_with_getfacl_fails_a_shadow_file_an_acl_opens(ssh_ready: None, debian_root: Path,
                                                             tmp_path: Path) -> None:
    verdicts = _verdicts(_guest(debian_root, tmp_path, getfacl=True))
    status, message = verdicts["/etc/shadow"]
    assert status is Status.FAIL, message
    assert "user 1000 can read it (ACL user:1000:r--)" in message and "0640+" in message
    assert verdicts["/etc/gshadow"][0] is Status.PASS


def test_a_guest_without_getfacl_is_unknown_where_ls_marks_an_acl(ssh_ready: None, debian_root: Path,
                                                                 tmp_path: Path) -> None:
    verdicts = _verdicts(_guest(debian_root, tmp_path, getfacl=False))
    status, message = verdicts["/etc/shadow"]
    assert status is Status.UNKNOWN and NO_GETFACL in message, message
    assert verdicts["/etc/gshadow"][0] is Status.PASS  # no ACL: ls shows none


def test_an_sftp_only_guest_cannot_tell_and_says_so(ssh_ready: None, debian_root: Path,
                                                    tmp_path: Path) -> None:
    verdicts = _verdicts(_guest(debian_root, tmp_path, getfacl=True, extra="ForceCommand internal-sftp\n"))
    for path in ("/etc/shadow", "/etc/gshadow"):
        status, message = verdicts[path]
        assert status is Status.UNKNOWN and "not visible over SFTP" in message, (path, message)
