"""A tiny random BERT with a WordPiece tokenizer trained on the given texts.

For tests and quick CPU runs: nothing is downloaded, everything is seeded.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import torch

from core.text import normalize
from encoder.model import EncoderSpec


def build_tokenizer(texts: Iterable[str], vocab_size: int):
    """A WordPiece tokenizer whose vocabulary is chosen deterministically: the special
    tokens, every character (alone and as a continuation), then the most frequent words."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    pre = pre_tokenizers.BertPreTokenizer()
    words = Counter(w for text in texts for w, _ in pre.pre_tokenize_str(normalize(text)))
    chars = sorted({c for w in words for c in w})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + [f"##{c}" for c in chars]
    frequent = sorted((w for w in words if len(w) > 1), key=lambda w: (-words[w], w))
    vocab += frequent[: max(0, vocab_size - len(vocab))]
    tokenizer = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return tokenizer


def build_tiny_checkpoint(
    directory: str | Path,
    texts: Iterable[str],
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 2,
    vocab: int = 1000,
    seed: int = 0,
    pooling: str = "cls",
) -> Path:
    """Write a randomly initialised small BERT checkpoint that `SentenceEncoder.load` reads."""
    from transformers import BertConfig, BertModel

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(texts, vocab)
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "unk_token": "[UNK]",
                "pad_token": "[PAD]",
                "cls_token": "[CLS]",
                "sep_token": "[SEP]",
                "mask_token": "[MASK]",
                "model_max_length": 128,
            }
        )
    )
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    BertModel(config, add_pooling_layer=True).save_pretrained(str(directory))
    EncoderSpec(pooling=pooling).write(directory)
    return directory
