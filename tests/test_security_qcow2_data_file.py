"""A qcow2 image whose header names an external data file (any host path, chosen by whoever wrote the
image) is refused before qemu-img or dissect is pointed at it — also when it has no backing file."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

import vmsec.collectors.image as image_mod
from vmsec.collectors.image import backing_chain, open_guest_image
from vmsec.errors import ReadError


@pytest.fixture()
def data_file_image(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    top = tmp_path / "images" / "top.qcow2"
    top.parent.mkdir()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o",
                    f"data_file={outside / 'host-secret'},data_file_raw=on", str(top), "1M"], check=True)
    return top


def test_external_data_file_without_backing_is_refused(data_file_image: Path) -> None:
    with pytest.raises(ReadError, match="external data file") as info:
        backing_chain(str(data_file_image))
    assert info.value.source == str(data_file_image)


def test_qemu_img_never_opens_the_data_file(data_file_image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[list[str]] = []
    real_run = subprocess.run

    def spy(args: list[str], *a: Any, **kw: Any) -> Any:
        runs.append(list(args))
        return real_run(args, *a, **kw)

    monkeypatch.setattr(image_mod.subprocess, "run", spy)
    with pytest.raises(ReadError, match="external data file"):
        open_guest_image(str(data_file_image))
    assert runs == []
