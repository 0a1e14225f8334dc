"""Data-parallel training (gloo on CPU): the global batch, and a rank killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tests.conftest import ROOT  # noqa: E402

PAIRS = [
    ("간경화", "liver cirrhosis", "K74.6"),
    ("간경변", "cirrhosis of liver", "K74.6"),
    ("고혈압", "hypertension", "I10"),
    ("본태성 고혈압", "essential hypertension", "I10"),
    ("천식", "asthma", "J45"),
    ("기관지 천식", "bronchial asthma", "J45"),
    ("충수염", "appendicitis", "K35"),
    ("급성 충수염", "acute appendicitis", "K35"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loss_and_grads(checkpoint: str, dist) -> tuple[float, dict[str, torch.Tensor]]:
    """One training step's loss and (synchronised) gradients through the trainer's own code."""
    from transformers import AutoTokenizer

    from encoder.model import SentenceEncoder
    from trainer.loss import RECIPES, MultiSimilarityLoss
    from trainer.pairs import Pair
    from trainer.train import Batches, step_loss, tokenize_all

    torch.manual_seed(0)
    model = SentenceEncoder.load(checkpoint, dropout=0.0)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    pairs = [Pair(*p) for p in PAIRS]
    texts = {p.sent0 for p in pairs} | {p.sent1 for p in pairs}
    labels = {c: i for i, c in enumerate(sorted({p.label for p in pairs}))}
    batches = Batches(pairs, tokenize_all(tokenizer, texts, "", 24), labels, len(pairs), 1, 0)
    forward = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(model)
    loss = step_loss(
        forward, batches.batch(0), MultiSimilarityLoss(RECIPES["reference"]), dist, torch.device("cpu"), None
    )
    loss.backward()
    return float(loss.detach()), {
        n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
    }


def _rank(rank: int, world: int, port: int, checkpoint: str, out: str) -> None:
    os.environ.update(
        {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": str(world)}
    )
    from safetensors.torch import save_file

    from trainer.distributed import Distributed

    dist = Distributed.start("cpu")
    loss, grads = _loss_and_grads(checkpoint, dist)
    if dist.main:
        save_file({**grads, "loss": torch.tensor([loss])}, out)
    dist.stop()


def test_two_ranks_train_exactly_like_one_process_with_the_double_batch(tiny_checkpoint, tmp_path):
    from safetensors.torch import load_file

    from trainer.distributed import Distributed

    single_loss, single = _loss_and_grads(str(tiny_checkpoint), Distributed())
    out = tmp_path / "rank0.safetensors"
    torch.multiprocessing.spawn(_rank, args=(2, _free_port(), str(tiny_checkpoint), str(out)), nprocs=2)
    both = load_file(str(out))
    assert float(both.pop("loss")) == pytest.approx(single_loss, rel=1e-5)
    assert both.keys() == single.keys()
    for name, grad in single.items():
        assert torch.allclose(both[name], grad, atol=1e-6, rtol=1e-4), name


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the ranks through /proc")
def test_kill_9_of_one_rank_leaves_a_last_that_resume_finishes(small_kcd, cache, tmp_path):
    output = tmp_path / "run"
    args = [
        "-m", "trainer", "run", "--preset", "tiny", "--dictionary", str(small_kcd), "--format", "kcd",
        "--output", str(output), "--set", "max_steps=400", "--set", "save_every=2", "--set", "eval_every=0",
        "--set", "batch_size=8",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-port",
            str(_free_port()),
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    state = output / "last" / "trainer_state.json"
    deadline = time.monotonic() + 240
    while not (state.is_file() and json.loads(state.read_text())["step"] >= 4):
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.stderr.read()[-3000:]
        time.sleep(0.2)
    ranks = _children(launcher.pid)
    assert len(ranks) == 2
    os.kill(ranks[-1], signal.SIGKILL)
    launcher.wait(timeout=120)
    assert launcher.returncode != 0
    saved = json.loads(state.read_text())["step"]
    assert 4 <= saved < 400
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "trainer",
            "run",
            "--output",
            str(output),
            "--resume",
            "--set",
            "max_steps=12",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # a run killed past step 12 has nothing left to do; otherwise it finishes at 12
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads(state.read_text())["step"] == max(saved, 12)
