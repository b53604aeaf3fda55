"""The kernel command line read as the kernel reads it (kernel-parameters.txt, attack_vector_controls.rst)."""

from __future__ import annotations

import pytest

from vmsec.parsers.kernel_cmdline import kernel_version, parse_cmdline, split_cmdline


def cmdline(text: str | bytes):  # type: ignore[no-untyped-def]
    return parse_cmdline(split_cmdline(text.encode() if isinstance(text, str) else text))


def test_the_last_occurrence_wins_and_init_arguments_do_not_count() -> None:
    c = cmdline('root=/dev/vda1 mitigations=off mitigations=auto -- mitigations=off "spectre_v2=off"')
    assert c.value("mitigations") == "auto"
    assert c.init_args == ("mitigations=off", '"spectre_v2=off"')
    assert not c.has("spectre_v2")


def test_dashes_and_underscores_are_the_same_in_names() -> None:
    c = cmdline("kvm-intel.vmentry_l1d_flush=never vfio_iommu_type1.allow-unsafe-interrupts=1")
    assert c.value("kvm_intel.vmentry_l1d_flush") == "never"
    assert c.value("vfio_iommu_type1.allow_unsafe_interrupts") == "1"


def test_quoted_values_lose_their_quotes() -> None:
    assert cmdline('dyndbg="file x.c +p" quiet').value("dyndbg") == "file x.c +p"


@pytest.mark.parametrize(("text", "kernel", "mode", "nosmt", "vectors", "ignored"), [
    ("", (6, 1), "auto", False, (), False),
    ("mitigations=off", (6, 1), "off", False, ("user_kernel", "user_user", "guest_host", "guest_guest",
                                               "cross_thread"), False),
    ("mitigations=auto,nosmt", (6, 1), "auto", True, (), False),
    ("mitigations=auto,no_guest_host,no_guest_guest", (6, 18), "auto", False,
     ("guest_host", "guest_guest"), False),
    ("mitigations=auto,no_guest_host,no_guest_guest", None, "auto", False,
     ("guest_host", "guest_guest"), False),
    # Before 6.17 the kernel rejects the value ("Unsupported mitigations=") and keeps auto.
    ("mitigations=auto,no_guest_host", (6, 1), "auto", False, (), True),
    ("mitigations=auto,bogus", (6, 18), "auto", False, (), True),
    # no_cross_thread turns the cross-thread mitigations off; it does not disable SMT.
    ("mitigations=auto,no_cross_thread", (6, 18), "auto", False, ("cross_thread",), False),
    # Before 6.17 a rejected value keeps what an earlier occurrence set ("Unsupported mitigations="
    # leaves cpu_mitigations as it was): off stays off.
    ("mitigations=off mitigations=of", (6, 1), "off", False, ("user_kernel", "user_user", "guest_host",
                                                              "guest_guest", "cross_thread"), True),
    ("mitigations=auto,nosmt mitigations=bogus", (6, 1), "auto", True, (), True),
    ("mitigations=off mitigations=auto", (6, 1), "auto", False, (), False),
    # Since 6.17 an attack vector an occurrence turns off is never turned on again, and options
    # before one the kernel rejects have already applied: the weakest reading of every occurrence.
    ("mitigations=auto,no_guest_host mitigations=auto", (6, 18), "auto", False, ("guest_host",), False),
    ("mitigations=auto,no_guest_host,no_guest_hots", (6, 18), "auto", False, ("guest_host",), True),
    ("mitigations=off mitigations=auto", (6, 18), "off", False, ("user_kernel", "user_user", "guest_host",
                                                                 "guest_guest", "cross_thread"), False),
    # The kernel's version unknown: the weaker of the two readings.
    ("mitigations=off mitigations=auto", None, "off", False, ("user_kernel", "user_user", "guest_host",
                                                              "guest_guest", "cross_thread"), False),
])
def test_mitigations(text: str, kernel: tuple[int, int] | None, mode: str, nosmt: bool,
                     vectors: tuple[str, ...], ignored: bool) -> None:
    m = cmdline(text).mitigations(kernel)
    assert (m.mode, m.nosmt, m.disabled_vectors, m.ignored is not None) == (mode, nosmt, vectors, ignored)


def test_kernel_version() -> None:
    assert kernel_version("6.18.44-fc-v1252") == (6, 18)
    assert kernel_version("6.1.0-18-amd64") == (6, 1)
    assert kernel_version(None) is None


# lib/cmdline.c next_arg() and kernel/params.c parse_args(): how the kernel cuts its command line.
@pytest.mark.parametrize(("raw", "name", "value"), [
    # An unclosed quote runs to the end of the line: what follows is part of dyndbg's value.
    (b'quiet mitigations=off dyndbg="x mitigations=auto\n', "mitigations", "off"),
    (b'dyndbg="+p nosmt\n', "dyndbg", "+p nosmt"),  # so no "nosmt" parameter
    # lib/ctype.c: byte 0xA0 is a blank to the kernel, so this is two parameters ...
    (b"quiet\xa0mitigations=off\n", "mitigations", "off"),
    # ... and 0x1C, U+2003 are not: one unknown parameter, never mitigations=auto.
    (b"mitigations=off quiet\x1cmitigations=auto\n", "mitigations", "off"),
    ("mitigations=off quiet\u2003mitigations=auto\n".encode(), "mitigations", "off"),
    # \v \f \r are blanks.
    (b"quiet\vmitigations=off\fnosmt\rx=1\n", "mitigations", "off"),
    # A quoted "--" is "--" once its quotes are gone: parameters end there.
    (b'mitigations=off "--" mitigations=auto\n', "mitigations", "off"),
    # A NUL ends the string the kernel reads.
    (b"mitigations=off\x00 mitigations=auto\n", "mitigations", "off"),
    # Quotes around a whole parameter, around a value, and an empty quoted value.
    (b'"mitigations=off"\n', "mitigations", "off"),
    (b'mitigations="auto,nosmt"\n', "mitigations", "auto,nosmt"),
    (b'mitigations="\n', "mitigations", ""),
])
def test_the_command_line_is_cut_as_the_kernel_cuts_it(raw: bytes, name: str, value: str | None) -> None:
    c = cmdline(raw)
    p = c.last(name)
    assert p is not None and p.value == value


def test_a_quoted_double_dash_ends_the_parameters() -> None:
    c = cmdline(b'quiet "--" nosmt\n')
    assert not c.has("nosmt") and c.init_args == ("nosmt",)


def test_dash_dash_with_a_value_is_a_parameter() -> None:
    assert cmdline(b"--=1 nosmt").has("nosmt")
