"""The kernel command line read as the kernel reads it (kernel-parameters.txt, attack_vector_controls.rst)."""

from __future__ import annotations

import pytest

from vmsec.collectors.host import _split_cmdline
from vmsec.parsers.kernel_cmdline import kernel_version, parse_cmdline


def cmdline(text: str):  # type: ignore[no-untyped-def]
    return parse_cmdline(_split_cmdline(text))


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
    ("mitigations=auto,no_cross_thread", (6, 18), "auto", True, ("cross_thread",), False),
])
def test_mitigations(text: str, kernel: tuple[int, int] | None, mode: str, nosmt: bool,
                     vectors: tuple[str, ...], ignored: bool) -> None:
    m = cmdline(text).mitigations(kernel)
    assert (m.mode, m.nosmt, m.disabled_vectors, m.ignored is not None) == (mode, nosmt, vectors, ignored)


def test_kernel_version() -> None:
    assert kernel_version("6.18.44-fc-v1252") == (6, 18)
    assert kernel_version("6.1.0-18-amd64") == (6, 1)
    assert kernel_version(None) is None
