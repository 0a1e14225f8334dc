"""`export-onnx`: a trained checkpoint becomes a self-contained ONNX model bundle.

The graph holds the backbone, the pooling, the optional head and the L2 normalisation,
so the runtime receives finished sentence vectors. The export measures cosine parity
against PyTorch on a sample of terms and refuses to write a bundle below the threshold.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.bundle import MANIFEST, BundleManifest, Embedder
from core.errors import require
from core.fsutil import atomic_dir, sha256_file

log = logging.getLogger(__name__)

MIN_PARITY = {"none": 0.999, "int8": 0.98}
DEFAULT_SAMPLE = (
    "간경화",
    "liver cirrhosis",
    "급성 충수염",
    "acute appendicitis",
    "제2형 당뇨병",
    "type 2 diabetes mellitus",
    "본태성 고혈압",
    "essential hypertension",
    "폐렴",
    "pneumonia",
    "만성 폐쇄성 폐질환",
    "copd",
    "심근경색",
    "myocardial infarction",
    "k74.6",
    "lt. knee oa",
)


class ParityError(RuntimeError):
    """The exported graph does not reproduce PyTorch closely enough."""


@dataclass(frozen=True)
class ExportConfig:
    checkpoint: Path
    out: Path
    quantize: str = "none"  # "none" or "int8"
    max_length: int = 64
    opset: int = 17

    def __post_init__(self) -> None:
        if self.quantize not in MIN_PARITY:
            raise ValueError(f"unknown quantization {self.quantize!r}; choose none or int8")
        if not (Path(self.checkpoint) / "config.json").is_file():
            raise ValueError(f"{self.checkpoint}: not a checkpoint directory (no config.json)")


def _save_tokenizer(checkpoint: Path, target: Path) -> None:
    from tokenizers import Tokenizer

    source = checkpoint / "tokenizer.json"
    if source.is_file():
        Tokenizer.from_file(str(source)).save(str(target), pretty=False)
        return
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{checkpoint}: needs a fast tokenizer (tokenizer.json) to export")
    tokenizer.backend_tokenizer.save(str(target), pretty=False)


def _export_graph(model, path: Path, opset: int) -> None:
    """Trace the encoder with eager attention: its graph is the pattern onnxruntime fuses
    into single Attention nodes (the SDPA graph is not fused)."""
    import torch

    backbone = model.backbone
    if hasattr(backbone, "set_attn_implementation"):
        backbone.set_attn_implementation("eager")
    else:
        backbone.config._attn_implementation = "eager"
    ids = torch.tensor([[0, 5, 6, 7, 2], [0, 8, 2, 1, 1]], dtype=torch.long)
    mask = (ids != 1).long()
    mask[0] = 1
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (ids, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            opset_version=opset,
            dynamo=False,
            dynamic_axes={
                "input_ids": {0: "batch", 1: "length"},
                "attention_mask": {0: "batch", 1: "length"},
                "embedding": {0: "batch"},
            },
        )


def _fuse(path: Path, config) -> None:
    """Fuse each transformer layer's operators (Attention, SkipLayerNormalization, BiasGelu)
    with onnxruntime's transformer optimizer, in place. A dozen-token query spends much of
    its time in the small shape operators of unfused attention: fused, a query took 2.3 ms
    instead of 2.8 (README, "Benchmark"). Embedding + LayerNorm stay unfused so the word
    embeddings can be fp16."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_embed_layer_norm = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fused = optimize_model(
            str(path),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            opt_level=0,
            optimization_options=options,
        )
    counts = fused.get_fused_operator_statistics()
    if counts.get("Attention", 0) != config.num_hidden_layers:
        log.warning(
            "fused %d attention blocks of %d layers", counts.get("Attention", 0), config.num_hidden_layers
        )
    fused.save_model_to_file(str(path))


def _half_embeddings(path: Path) -> None:
    """Store large Gather tables (the word embeddings) as fp16, cast back after the lookup."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    tables = {t.name: t for t in graph.initializer if t.data_type == TensorProto.FLOAT}
    for node in list(graph.node):
        table = tables.get(node.input[0]) if node.op_type == "Gather" else None
        if table is None or np.prod(table.dims) < 1_000_000:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(table).astype(np.float16), table.name)
        table.CopyFrom(half)
        output = node.output[0]
        node.output[0] = f"{output}_fp16"
        cast = helper.make_node(
            "Cast", [node.output[0]], [output], to=TensorProto.FLOAT, name=f"{node.name}_to_fp32"
        )
        graph.node.insert(list(graph.node).index(node) + 1, cast)
    onnx.save(model, str(path))


def _matmuls(path: Path) -> list[str]:
    import onnx

    return [
        n.name for n in onnx.load(str(path), load_external_data=False).graph.node if n.op_type == "MatMul"
    ]


def _quantize(source: Path, target: Path, float_nodes: Sequence[str] = ()) -> None:
    """int8 weights (per channel) for the MatMuls and fused Attention nodes except
    `float_nodes`, fp16 word embeddings (int8 ones cost too much parity)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=False,
        op_types_to_quantize=["MatMul", "Attention"],
        nodes_to_exclude=list(float_nodes),
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # types behind fused nodes
    )
    _half_embeddings(target)


def _mixed_int8(
    model, fp32: Path, bundle: Path, write_manifest, texts: list[str]
) -> tuple[tuple[str, ...], dict]:
    """Quantize `fp32` into `bundle`/model.onnx, keeping float only the MatMuls that the
    parity gate needs. A fine-tuned encoder loses parity in a few projections whose inputs
    carry outlier channels (measured on release 2's weights: layer 0's FFN input projection
    alone took the minimum cosine to 0.971, every other one cost less than 0.01). Each MatMul
    is quantized alone to rank them by the cosine they cost; the worst are kept in float, one
    at a time, until the gate holds. Returns the names kept in float and the parity over
    `texts` of the model written."""
    target = bundle / "model.onnx"

    def measured(float_nodes: Sequence[str], sample: list[str]) -> dict:
        _quantize(fp32, target, float_nodes)
        write_manifest(tuple(float_nodes))
        return parity(model, bundle, sample)

    result = measured((), texts)
    if result["min"] >= MIN_PARITY["int8"]:
        return (), result
    matmuls = _matmuls(fp32)
    probe = texts[:100]
    cost = {name: measured([m for m in matmuls if m != name], probe)["min"] for name in matmuls}
    ranked, count = sorted(matmuls, key=cost.__getitem__), 0
    for count in range(1, len(ranked) + 1):
        result = measured(ranked[:count], texts)
        if result["min"] >= MIN_PARITY["int8"]:
            log.info("int8 with %d MatMuls in float: %s", count, ", ".join(ranked[:count]))
            break
    return tuple(ranked[:count]), result


def parity(model, bundle: Path, texts: list[str]) -> dict[str, float]:
    """Cosine between PyTorch and ONNX Runtime vectors of the same tokenised texts."""
    import torch

    embedder = Embedder(bundle, verify=False)
    onnx_vectors = embedder.encode(texts)
    torch_vectors = []
    for start in range(0, len(texts), 64):
        ids, mask = embedder.tokenize(texts[start : start + 64])
        with torch.no_grad():
            torch_vectors.append(model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy())
    cosine = (np.concatenate(torch_vectors) * onnx_vectors).sum(1)
    return {"min": float(cosine.min()), "mean": float(cosine.mean()), "n": len(texts)}


def export_onnx(config: ExportConfig, *, sample: list[str] | None = None) -> BundleManifest:
    """Write a bundle for `config.checkpoint` to `config.out` (atomically) and return its manifest.
    int8 keeps in float the fewest MatMuls that hold the parity gate (`_mixed_int8`).

    Raises:
        ParityError: the minimum cosine over `sample` is below 0.999 (fp32) or 0.98 (int8).
    """
    for module in ("onnx", "torch", "transformers"):
        require(module, "export")
    from encoder.model import SentenceEncoder

    model = SentenceEncoder.load(config.checkpoint).eval()
    texts = list(sample or DEFAULT_SAMPLE)
    with atomic_dir(config.out) as tmp:
        _save_tokenizer(config.checkpoint, tmp / "tokenizer.json")

        def write_manifest(float_nodes: tuple[str, ...] = (), **extra) -> BundleManifest:
            manifest = BundleManifest(
                pooling=model.spec.pooling,
                max_length=config.max_length,
                dim=model.dim,
                prefix=model.spec.prefix,
                source=str(config.checkpoint),
                quantization=config.quantize,
                files={name: sha256_file(tmp / name) for name in ("model.onnx", "tokenizer.json")},
                float_nodes=list(float_nodes),
                **extra,
            )
            (tmp / MANIFEST).write_text(manifest.to_json())
            return manifest

        with tempfile.TemporaryDirectory() as scratch:
            fp32 = Path(scratch) / "model.onnx"
            _export_graph(model, fp32, config.opset)
            _fuse(fp32, model.backbone.config)
            if config.quantize == "int8":
                float_nodes, measured = _mixed_int8(model, fp32, tmp, write_manifest, texts)
            else:
                fp32.replace(tmp / "model.onnx")
                float_nodes = ()
                write_manifest()
                measured = parity(model, tmp, texts)
        log.info(
            "parity vs PyTorch on %d texts: min cosine %.6f, mean %.6f",
            measured["n"],
            measured["min"],
            measured["mean"],
        )
        if measured["min"] < MIN_PARITY[config.quantize]:
            raise ParityError(
                f"min cosine {measured['min']:.6f} over {measured['n']} texts is below "
                f"{MIN_PARITY[config.quantize]} for quantization {config.quantize!r}; bundle not written"
            )
        return write_manifest(float_nodes, parity=measured)
