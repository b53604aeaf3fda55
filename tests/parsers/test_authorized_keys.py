"""authorized_keys: key type and size decoded from real ssh-keygen keys, options with quoted commas,
garbled lines kept as unknown, and the files of every account home (plus /root)."""

from __future__ import annotations

import base64
import os
import struct
from pathlib import Path

from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind, Problems
from vmsec.facts import Account
from vmsec.parsers.authorized_keys import expand_tokens, key_bits, parse_authorized_keys, read_authorized_keys

GUESTS = Path(__file__).resolve().parents[1] / "data" / "guests"


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def test_checked_in_keys_decode_to_their_real_sizes() -> None:
    keys = read_authorized_keys(RootReader(str(GUESTS / "debian12")),
                                [Account(name="debian", uid=1000, gid=1000, home="/home/debian"),
                                 Account(name="alice", uid=1001, gid=1001, home="/home/alice")])
    summary = [(k.user, k.path.rsplit("/", 1)[1], k.key_type, k.bits, k.line) for k in keys]
    assert summary == [
        ("debian", "authorized_keys", "ssh-ed25519", 256, 1),
        ("debian", "authorized_keys", "ssh-rsa", 2048, 3),
        ("debian", "authorized_keys", "ecdsa-sha2-nistp384", 384, 4),
        ("debian", "authorized_keys", None, None, 5),  # garbled base64
        ("alice", "authorized_keys2", "ssh-dss", 1024, 1),
        ("alice", "authorized_keys2", "ssh-rsa", 1024, 2),
        ("root", "authorized_keys", "ssh-ed25519", 256, 1),  # /root is always looked at
    ]


def test_options_with_quoted_commas_and_spaces() -> None:
    pub = (GUESTS / "debian12/home/debian/.ssh/authorized_keys").read_text().splitlines()[0]
    line = f'from="10.0.0.0/8,192.168.1.1",command="/bin/x --a \\"b, c\\"",restrict {pub}'
    [key] = parse_authorized_keys(line + "\n", "u", "/p")
    assert key.options == ('from="10.0.0.0/8,192.168.1.1"', 'command="/bin/x --a \\"b, c\\""', "restrict")
    assert (key.key_type, key.bits, key.comment) == ("ssh-ed25519", 256, "alice@laptop")


def test_declared_type_must_match_the_blob() -> None:
    blob = base64.b64encode(_string(b"ssh-ed25519") + _string(b"\x00" * 32)).decode()
    [key] = parse_authorized_keys(f"ssh-rsa {blob} liar\n", "u", "/p")
    assert key.key_type is None and key.bits is None


def test_rsa_bits_from_a_constructed_modulus() -> None:
    modulus = (1 << 4095) | 1
    blob = _string(b"ssh-rsa") + _string(b"\x01\x00\x01") + _string(b"\x00" + modulus.to_bytes(512, "big"))
    assert key_bits(blob) == ("ssh-rsa", 4096)


def test_truncated_blob_is_unknown() -> None:
    blob = base64.b64encode(_string(b"ssh-rsa") + b"\x00\x00\x10\x00abc").decode()
    [key] = parse_authorized_keys(f"ssh-rsa {blob}\n", "u", "/p")
    assert key.key_type is None


def test_comments_and_blank_lines_are_skipped() -> None:
    assert parse_authorized_keys("# only a comment\n\n   \n", "u", "/p") == ()


def test_fifo_is_skipped_with_a_note_and_symlink_out_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside_keys"
    outside.write_text((GUESTS / "alma9/home/almalinux/.ssh/authorized_keys").read_text())
    root = tmp_path / "root"
    (root / "home/a/.ssh").mkdir(parents=True)
    (root / "home/b/.ssh").mkdir(parents=True)
    os.mkfifo(root / "home/a/.ssh/authorized_keys")
    (root / "home/b/.ssh/authorized_keys").symlink_to(outside)
    notes = Problems()
    keys = read_authorized_keys(RootReader(str(root)),
                                [Account(name="a", uid=1, gid=1, home="/home/a"),
                                 Account(name="b", uid=2, gid=2, home="/home/b")], problems=notes)
    assert keys == ()
    assert [(n.source, n.reason, n.kind) for n in notes] == [
        ("/home/a/.ssh/authorized_keys", "fifo, not a regular file; sshd ignores it", ErrorKind.NOT_REGULAR)]


def test_authorized_keys_file_tokens() -> None:
    assert expand_tokens(".ssh/authorized_keys", "bob", "/home/bob") == "/home/bob/.ssh/authorized_keys"
    assert expand_tokens("/etc/ssh/keys/%u", "bob", "/home/bob") == "/etc/ssh/keys/bob"
    assert expand_tokens("%h/.ssh/k%%", "bob", "/srv/b") == "/srv/b/.ssh/k%"
    assert expand_tokens(".ssh/k", "root", "/") == "/.ssh/k"


def test_configured_files_and_none(tmp_path: Path) -> None:
    pub = (GUESTS / "alma9/home/almalinux/.ssh/authorized_keys").read_text()
    (tmp_path / "etc/ssh/keys").mkdir(parents=True)
    (tmp_path / "etc/ssh/keys/bob").write_text(pub)
    bob = [Account(name="bob", uid=5, gid=5, home="/home/bob")]
    reader = RootReader(str(tmp_path))
    keys = read_authorized_keys(reader, bob, ("/etc/ssh/keys/%u",))
    assert [(k.user, k.path) for k in keys] == [("bob", "/etc/ssh/keys/bob")]
    assert read_authorized_keys(reader, bob, ("none",)) == ()
