"""The sentence encoder: a Hugging Face backbone, a pooler, an optional MLP head, L2 norm.

A checkpoint directory holds the backbone (`save_pretrained`), its tokenizer, and
`sapbert.json` (EncoderSpec); `head.safetensors` when there is a head. The same module
is trained by the trainer and exported by `export-onnx`, so pooling lives here once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

POOLINGS = ("cls", "mean", "max", "pooler_output")
SPEC_FILE = "sapbert.json"


@dataclass(frozen=True)
class EncoderSpec:
    """How token states become a sentence vector, and the text prefix the model expects."""

    pooling: str = "cls"
    prefix: str = ""
    head: tuple[int, ...] = ()  # hidden sizes of the MLP head; () = no head

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        object.__setattr__(self, "head", tuple(int(d) for d in self.head))

    @classmethod
    def read(cls, directory: str | Path) -> EncoderSpec:
        """The spec saved beside a checkpoint; defaults (cls, no prefix) for a plain HF model."""
        path = Path(directory) / SPEC_FILE
        return cls(**json.loads(path.read_text())) if path.is_file() else cls()

    def write(self, directory: str | Path) -> None:
        (Path(directory) / SPEC_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")


def pool(
    hidden: torch.Tensor, mask: torch.Tensor, mode: str, pooler_output: torch.Tensor | None = None
) -> torch.Tensor:
    """Pool token states (batch, length, dim) under an attention mask (batch, length)."""
    if mode == "cls":
        return hidden[:, 0]
    if mode == "pooler_output":
        if pooler_output is None:
            raise ValueError("pooling 'pooler_output' needs a backbone with a pooler layer")
        return pooler_output
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "mean":
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    if mode == "max":
        return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).max(1).values
    raise ValueError(f"unknown pooling {mode!r}; choose one of {', '.join(POOLINGS)}")


def mlp_head(dim: int, sizes: tuple[int, ...]) -> nn.Sequential | None:
    if not sizes:
        return None
    layers: list[nn.Module] = []
    for size in sizes[:-1]:
        layers += [nn.Linear(dim, size), nn.GELU()]
        dim = size
    layers.append(nn.Linear(dim, sizes[-1]))
    return nn.Sequential(*layers)


class SentenceEncoder(nn.Module):
    """Backbone + pooling + optional MLP head + L2 normalisation."""

    def __init__(self, backbone: nn.Module, spec: EncoderSpec) -> None:
        super().__init__()
        self.backbone = backbone
        self.spec = spec
        self.head = mlp_head(backbone.config.hidden_size, spec.head)

    @property
    def dim(self) -> int:
        return self.spec.head[-1] if self.spec.head else self.backbone.config.hidden_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
        )
        vector = pool(
            out.last_hidden_state, attention_mask, self.spec.pooling, getattr(out, "pooler_output", None)
        )
        if self.head is not None:
            vector = self.head(vector)
        return F.normalize(vector, dim=-1)

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        spec: EncoderSpec | None = None,
        dropout: float | None = None,
        attention: str | None = None,
    ) -> SentenceEncoder:
        """Load a checkpoint directory or a Hugging Face model name (local files only).
        `attention` picks transformers' attention kernel ("sdpa", "eager"; None: its default)."""
        from transformers import AutoConfig, AutoModel

        spec = spec or EncoderSpec.read(directory)
        config = AutoConfig.from_pretrained(str(directory), local_files_only=True)
        if dropout is not None:
            for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
                if hasattr(config, key):
                    setattr(config, key, dropout)
        backbone = AutoModel.from_pretrained(
            str(directory),
            config=config,
            add_pooling_layer=spec.pooling == "pooler_output",
            local_files_only=True,
            **({"attn_implementation": attention} if attention else {}),
        )
        model = cls(backbone, spec)
        head_file = Path(directory) / "head.safetensors"
        if model.head is not None and head_file.is_file():
            from safetensors.torch import load_file

            model.head.load_state_dict(load_file(str(head_file)))
        return model

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        self.backbone.save_pretrained(str(directory))
        self.spec.write(directory)
        if self.head is not None:
            from safetensors.torch import save_file

            save_file(
                {k: v.contiguous() for k, v in self.head.state_dict().items()},
                str(directory / "head.safetensors"),
            )
