"""Multi-similarity loss (Wang et al., "Multi-Similarity Loss with General Pair Weighting
for Deep Metric Learning", CVPR 2019), as used by SapBERT (Liu et al., NAACL 2021).

The math is a function of plain tensors, `multi_similarity_loss(embeddings, labels)`,
so it is tested on hand-made inputs; `MultiSimilarityLoss` wraps it as an nn.Module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LossConfig:
    """threshold is λ (the similarity "base"), scale_pos α, scale_neg β.

    With `mining`, a positive pair is kept only if its similarity is below the hardest
    negative's plus `margin`, and a negative only if above the weakest positive's minus
    `margin` (the MS paper's hard-pair mining; on cosine similarities it selects the same
    pairs as SapBERT's all-triplets margin miner).
    """

    threshold: float = 0.8
    scale_pos: float = 1.0
    scale_neg: float = 60.0
    margin: float = 0.1
    mining: bool = True

    def __post_init__(self) -> None:
        if self.scale_pos <= 0 or self.scale_neg <= 0:
            raise ValueError(f"scales must be positive, got {self.scale_pos}, {self.scale_neg}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")


RECIPES = {
    # the SapBERT-KO-EN seed's parameters
    "reference": LossConfig(threshold=0.8, scale_pos=1.0, scale_neg=60.0, margin=0.1, mining=True),
    # the original SapBERT recipe: alpha=1, beta=60, base=0.5, triplet-margin mining (0.2)
    "sapbert": LossConfig(threshold=0.5, scale_pos=1.0, scale_neg=60.0, margin=0.2, mining=True),
}


def multi_similarity_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, config: LossConfig = RECIPES["reference"]
) -> torch.Tensor:
    """Multi-similarity loss of a batch.

    Args:
        embeddings: (n, d) vectors; cosine similarity is their dot product, so pass them
            L2-normalised.
        labels: (n,) integer concept ids; equal labels are positives, never negatives.
        config: the loss parameters.

    Returns:
        The mean over anchors that have at least one kept pair (0 if none has).
    """
    sim = embeddings @ embeddings.T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos_mask, neg_mask = same & ~eye, ~same
    if config.mining:
        inf = torch.tensor(float("inf"), dtype=sim.dtype, device=sim.device)
        hardest_neg = torch.where(neg_mask, sim, -inf).max(dim=1, keepdim=True).values
        weakest_pos = torch.where(pos_mask, sim, inf).min(dim=1, keepdim=True).values
        pos_mask = pos_mask & (sim - config.margin < hardest_neg)
        neg_mask = neg_mask & (sim + config.margin > weakest_pos)
    lam, alpha, beta = config.threshold, config.scale_pos, config.scale_neg
    pos_term = _log1p_sum_exp(-alpha * (sim - lam), pos_mask) / alpha
    neg_term = _log1p_sum_exp(beta * (sim - lam), neg_mask) / beta
    active = pos_mask.any(dim=1) | neg_mask.any(dim=1)
    if not active.any():
        return sim.sum() * 0.0
    return (pos_term + neg_term)[active].mean()


def _log1p_sum_exp(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise log(1 + sum_{mask} exp(logits)), stably; 0 where the mask is empty."""
    zeros = torch.zeros(len(logits), 1, dtype=logits.dtype, device=logits.device)
    masked = torch.where(mask, logits, torch.tensor(float("-inf"), dtype=logits.dtype, device=logits.device))
    return torch.logsumexp(torch.cat([zeros, masked], dim=1), dim=1)


class MultiSimilarityLoss(nn.Module):
    def __init__(self, config: LossConfig = RECIPES["reference"]) -> None:
        super().__init__()
        self.config = config

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return multi_similarity_loss(embeddings.float(), labels, self.config)
