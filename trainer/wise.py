"""Weight-space ensembling of a fine-tuned encoder with its base (WiSE-FT).

Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022: the weights
θ(α) = (1 − α)·θ_base + α·θ_tuned keep much of what the base knew (here: general medical
vocabulary, colloquial Korean) and much of what fine-tuning taught (KCD-8 wording, the bank's
synonyms), at no cost at run time. α = 1 is the fine-tuned model, α = 0 the base. α is picked
on the long-tail dev set, never on the benchmark's held-out split.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from core.fsutil import atomic_dir

WEIGHTS = "model.safetensors"

# the release's α: picked on the long-tail dev set (README, "The default model")
RELEASE_ALPHA = 0.9


def interpolate_weights(base: dict, tuned: dict, alpha: float) -> dict:
    """(1 − α)·base + α·tuned for every floating tensor of `tuned`, which the base must hold
    with the same shape (a checkpoint and the base it was trained from). Base tensors that
    the trained model does not use (e.g. an unused pooler) are left out."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")
    missing = sorted(tuned.keys() - base.keys())
    if missing:
        raise ValueError(f"the base lacks {missing[:5]}: the checkpoints are not a base and its fine-tune")
    out = {}
    for name, weight in tuned.items():
        other = base[name]
        if other.shape != weight.shape:
            raise ValueError(
                f"{name}: shape {tuple(other.shape)} in the base, {tuple(weight.shape)} fine-tuned"
            )
        if weight.is_floating_point():
            mixed = other.float().lerp(weight.float(), alpha)
            out[name] = mixed.to(weight.dtype).contiguous()
        else:
            out[name] = weight.clone()
    return out


def vocabulary(checkpoint: Path) -> dict[str, int]:
    """The token → id map of a checkpoint's tokenizer."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(checkpoint / "tokenizer.json")).get_vocab()


def interpolate_checkpoints(base: str | Path, tuned: str | Path, alpha: float, out: str | Path) -> Path:
    """Write the checkpoint θ(α) into `out`: the fine-tuned checkpoint's files (tokenizer,
    config, pooling spec) with interpolated weights. Written atomically."""
    from safetensors.torch import load_file, save_file

    base, tuned, out = Path(base), Path(tuned), Path(out)
    for directory in (base, tuned):
        if not (directory / WEIGHTS).is_file():
            raise FileNotFoundError(f"{directory / WEIGHTS}: no checkpoint there")
    if vocabulary(base) != vocabulary(tuned):
        raise ValueError(
            f"{base}: its vocabulary is not that of {tuned}, so it is not the base that checkpoint "
            "was trained from (the offline base follows the dictionary and bank it was built for)"
        )
    if (tuned / "head.safetensors").is_file():
        raise ValueError(f"{tuned}: checkpoints with a projection head are not supported (the base has none)")
    weights = interpolate_weights(load_file(str(base / WEIGHTS)), load_file(str(tuned / WEIGHTS)), alpha)
    with atomic_dir(out) as tmp:
        for item in tuned.iterdir():
            if item.is_file() and item.name != WEIGHTS and item.suffix != ".pt":
                shutil.copy2(item, tmp / item.name)
        save_file(weights, str(tmp / WEIGHTS), metadata={"format": "pt"})
        provenance = {"alpha": alpha, "base": base.as_posix(), "tuned": tuned.as_posix()}
        (tmp / "wise.json").write_text(json.dumps(provenance, ensure_ascii=False) + "\n")
    return out
