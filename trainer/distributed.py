"""Data-parallel training on torch.distributed, launched by torchrun.

    torchrun --nproc-per-node N -m trainer run ...

Each rank embeds its share of every global batch; the embeddings are all-gathered *with
gradient* before the loss, so the multi-similarity loss and its miner see the whole batch, as
SapBERT's DataParallel did (under plain DistributedDataParallel each rank would see only its
own pairs, which weakens a metric-learning loss). With DDP averaging the parameter gradients,
N ranks × batch b train exactly like one process with batch N·b (tested with gloo on CPU).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job: rank 0 of 1 when not launched by torchrun."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def start(cls, device_type: str) -> Distributed:
        """Join the process group torchrun describes in the environment (nccl on CUDA, gloo on CPU)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0 writes checkpoints, evaluates and shows the progress bar."""
        return self.rank == 0

    def shard(
        self, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """This rank's pairs of a global batch (rows `i` and `B + i` hold pair `i`; rank r takes
        the pairs i ≡ r mod world). A remainder that does not divide evenly is left out, so that
        every rank holds as many rows (all_gather needs equal sizes)."""
        if not self.enabled:
            return ids, mask, labels
        pairs = len(labels) // 2
        mine = torch.arange(self.rank, pairs - pairs % self.world, self.world)
        rows = torch.cat([mine, mine + pairs])
        ids, mask = ids[rows], mask[rows]
        width = max(1, int(mask.sum(dim=1).max()))
        return ids[:, :width], mask[:, :width], labels[rows]

    def gather(self, vectors: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every rank's embeddings (with gradient) and labels, concatenated in rank order."""
        if not self.enabled:
            return vectors, labels
        import torch.distributed as dist
        from torch.distributed.nn.functional import all_gather

        everyone = [torch.empty_like(labels) for _ in range(self.world)]
        dist.all_gather(everyone, labels)
        return torch.cat(all_gather(vectors)), torch.cat(everyone)

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def stop(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
