"""Training throughput: pairs/s, time per epoch and peak GPU memory of a preset, measured over a
few real steps of the trainer's own step on the run's data (benchmark section 3).

    python -m trainer speed --preset reference --preset fast --set model=tiny --steps 20 --name cpu-tiny

Writes bench/results/train-speed-NAME.json with each preset's figures, the fast/reference ratio,
the machine and the package versions. Under torchrun, the figures are for the whole job (rank 0
reports; pairs/s counts every rank's pairs).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from core.bench import cpu_name

from .config import TrainConfig
from .loss import MultiSimilarityLoss
from .train import _schedule, optimizer_step, prepare, step_loss

ROOT = Path(__file__).resolve().parents[1]


def measure(config: TrainConfig, *, steps: int, warmup: int = 3) -> dict:
    """Figures of `steps` training steps after `warmup` unmeasured ones."""
    run = prepare(config, resume=False)
    model, device, dist = run.model, run.device, run.dist
    forward = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        forward = torch.compile(forward)
    params = [p for p in model.parameters() if p.requires_grad]
    fused = device.type == "cuda" if config.fused_adamw is None else config.fused_adamw
    optimizer = torch.optim.AdamW(params, lr=config.lr, fused=fused)
    schedule = _schedule(optimizer, warmup + steps, 0)
    criterion = MultiSimilarityLoss(config.loss_config())
    scaler = torch.amp.GradScaler(device.type, enabled=run.autocast_dtype == torch.float16)

    def one(step: int) -> int:
        batch = run.batches.batch(step)
        loss = step_loss(forward, batch, criterion, dist, device, run.autocast_dtype, chunks=run.chunks)
        optimizer_step(
            loss,
            scaler=scaler,
            optimizer=optimizer,
            params=params,
            grad_clip=config.grad_clip,
            schedule=schedule,
        )
        return len(batch[2]) // 2

    for step in range(warmup):
        one(step)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started, pairs = time.perf_counter(), 0
    for step in range(warmup, warmup + steps):
        pairs += one(step)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    per_step = seconds / steps
    figures = {
        "model": config.model,
        "device": str(device),
        "world_size": dist.world,
        "batch_size": config.batch_size,
        "max_length": config.max_length,
        "precision": str(run.autocast_dtype or "fp32"),
        "length_chunks": run.chunks,
        "steps": steps,
        "pairs_per_s": pairs / seconds,
        "seconds_per_step": per_step,
        "epoch_pairs": len(run.batches.pairs),
        "epoch_minutes": run.batches.per_epoch * per_step / 60,
        "peak_gpu_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
    }
    dist.stop()
    return figures


def machine() -> dict:
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpus": gpus,
    }


def write_results(name: str, rows: dict[str, dict]) -> Path:
    result = {"name": name, "machine": machine(), "presets": rows}
    if "reference" in rows and "fast" in rows:
        result["fast_over_reference"] = rows["fast"]["pairs_per_s"] / rows["reference"]["pairs_per_s"]
    path = ROOT / "bench" / "results" / f"train-speed-{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
