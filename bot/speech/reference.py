"""openai-whisper (the reference implementation) backend: the only whisper/torch importer.

openai-whisper is an optional extra. No package ships its checkpoints, so
``convert_checkpoint`` rebuilds one from the CTranslate2 model we already
assemble: same weights, CTranslate2's fused attention projections split back.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import TranscriberUnavailable
from bot.speech.base import AudioClip, Transcript
from bot.speech.models import read_ctranslate2

_RENAMES = [
    (r"^encoder/conv(\d)/(weight|bias)$", r"encoder.conv\1.\2"),
    (r"^encoder/position_encodings/encodings$", "encoder.positional_embedding"),
    (r"^encoder/layer_norm/gamma$", "encoder.ln_post.weight"),
    (r"^encoder/layer_norm/beta$", "encoder.ln_post.bias"),
    (r"^decoder/embeddings/weight$", "decoder.token_embedding.weight"),
    (r"^decoder/position_encodings/encodings$", "decoder.positional_embedding"),
    (r"^decoder/layer_norm/gamma$", "decoder.ln.weight"),
    (r"^decoder/layer_norm/beta$", "decoder.ln.bias"),
    (r"^(\w+)/layer_(\d+)/self_attention/layer_norm/gamma$", r"\1.blocks.\2.attn_ln.weight"),
    (r"^(\w+)/layer_(\d+)/self_attention/layer_norm/beta$", r"\1.blocks.\2.attn_ln.bias"),
    (r"^(\w+)/layer_(\d+)/self_attention/linear_1/(weight|bias)$", r"\1.blocks.\2.attn.out.\3"),
    (r"^decoder/layer_(\d+)/attention/layer_norm/gamma$",
     r"decoder.blocks.\1.cross_attn_ln.weight"),
    (r"^decoder/layer_(\d+)/attention/layer_norm/beta$", r"decoder.blocks.\1.cross_attn_ln.bias"),
    (r"^decoder/layer_(\d+)/attention/linear_0/(weight|bias)$",
     r"decoder.blocks.\1.cross_attn.query.\2"),
    (r"^decoder/layer_(\d+)/attention/linear_2/(weight|bias)$",
     r"decoder.blocks.\1.cross_attn.out.\2"),
    (r"^(\w+)/layer_(\d+)/ffn/layer_norm/gamma$", r"\1.blocks.\2.mlp_ln.weight"),
    (r"^(\w+)/layer_(\d+)/ffn/layer_norm/beta$", r"\1.blocks.\2.mlp_ln.bias"),
    (r"^(\w+)/layer_(\d+)/ffn/linear_0/(weight|bias)$", r"\1.blocks.\2.mlp.0.\3"),
    (r"^(\w+)/layer_(\d+)/ffn/linear_1/(weight|bias)$", r"\1.blocks.\2.mlp.2.\3"),
]
_FUSED_QKV = re.compile(r"^(\w+)/layer_(\d+)/self_attention/linear_0/(weight|bias)$")
_FUSED_KV = re.compile(r"^decoder/layer_(\d+)/attention/linear_1/(weight|bias)$")


def _state_dict(model_bin: Path) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    state: dict[str, np.ndarray] = {}
    heads: dict[str, int] = {}
    for name, value in read_ctranslate2(model_bin):
        if name.endswith("/num_heads"):
            heads[name.split("/")[0]] = int(value)
            continue
        if value.ndim == 0:
            continue  # flags (activation, pre_norm…): fixed by openai-whisper's architecture
        if match := _FUSED_QKV.match(name):
            side, layer, part = match.groups()
            for proj, chunk in zip(("query", "key", "value"), np.split(value, 3), strict=True):
                if not (proj == "key" and part == "bias"):  # Whisper's key has no bias
                    state[f"{side}.blocks.{layer}.attn.{proj}.{part}"] = chunk
            continue
        if match := _FUSED_KV.match(name):
            layer, part = match.groups()
            for proj, chunk in zip(("key", "value"), np.split(value, 2), strict=True):
                if not (proj == "key" and part == "bias"):
                    state[f"decoder.blocks.{layer}.cross_attn.{proj}.{part}"] = chunk
            continue
        for pattern, replacement in _RENAMES:
            if re.match(pattern, name):
                state[re.sub(pattern, replacement, name)] = value
                break
        else:
            raise TranscriberUnavailable(f"unexpected variable {name}", backend="openai-whisper")
    return state, heads


def convert_checkpoint(ct2_dir: Path, target: Path) -> Path:
    """Write an openai-whisper checkpoint (``whisper.load_model(path)``) from a CTranslate2 dir."""
    torch = _torch()
    state, heads = _state_dict(ct2_dir / "model.bin")
    layers = {side: 1 + max(int(k.split(".")[2]) for k in state if k.startswith(f"{side}.blocks"))
              for side in ("encoder", "decoder")}
    dims = {
        "n_mels": int(state["encoder.conv1.weight"].shape[1]),
        "n_vocab": int(state["decoder.token_embedding.weight"].shape[0]),
        "n_audio_ctx": int(state["encoder.positional_embedding"].shape[0]),
        "n_audio_state": int(state["encoder.positional_embedding"].shape[1]),
        "n_audio_head": heads["encoder"],
        "n_audio_layer": layers["encoder"],
        "n_text_ctx": int(state["decoder.positional_embedding"].shape[0]),
        "n_text_state": int(state["decoder.positional_embedding"].shape[1]),
        "n_text_head": heads["decoder"],
        "n_text_layer": layers["decoder"],
    }
    checkpoint = {
        "dims": dims,
        "model_state_dict": {k: torch.from_numpy(np.array(v)) for k, v in state.items()},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    torch.save(checkpoint, partial)
    partial.replace(target)
    return target


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise TranscriberUnavailable(
            "openai-whisper is not installed: make install-reference (pip extra 'reference')",
            backend="openai-whisper",
        ) from exc
    return torch


class OpenAIWhisperTranscriber:
    """The reference implementation on CPU (fp32), same weights as faster-whisper's."""

    name = "openai-whisper"

    def __init__(self, checkpoint: Path, *, threads: int = 2, beam_size: int = 5) -> None:
        self._checkpoint = checkpoint
        self._threads = threads
        self._beam_size = beam_size
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._busy = asyncio.Lock()

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                torch = _torch()
                try:
                    import whisper
                except ImportError as exc:
                    raise TranscriberUnavailable(
                        "openai-whisper is not installed", backend=self.name
                    ) from exc
                if not self._checkpoint.is_file():
                    raise TranscriberUnavailable(
                        f"no checkpoint {self._checkpoint}: run `atiende models convert-whisper`",
                        backend=self.name,
                    )
                torch.set_num_threads(self._threads)
                self._model = whisper.load_model(str(self._checkpoint.resolve()), device="cpu")
                # openai-whisper reads its tokenizer file without closing it (a ResourceWarning);
                # load the cached encoding once here, with that one warning silenced.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ResourceWarning)
                    whisper.tokenizer.get_encoding(
                        name="multilingual", num_languages=self._model.num_languages
                    )
            return self._model

    async def warm(self) -> None:
        await asyncio.to_thread(self._load)

    def _run(self, clip: AudioClip, language: str) -> str:
        model = self._load()
        result = model.transcribe(
            clip.samples, language=language, fp16=False, beam_size=self._beam_size,
            condition_on_previous_text=False, verbose=None,
        )
        return str(result["text"]).strip()

    async def transcribe(self, clip: AudioClip, *, language: str) -> Transcript:
        async with self._busy:
            started = time.perf_counter()
            text = await asyncio.to_thread(self._run, clip, language)
        return Transcript(text, language, clip.duration, self.name, time.perf_counter() - started)
