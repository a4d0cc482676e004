"""An int8 model built from a packaged one at first load: per-channel dynamic quantization of its MatMuls.

The packaged all-MiniLM-L6-v2 stores int8 weights, but casts them back to float in the graph: onnxruntime folds
the casts at load and runs 36 fp32 weight MatMuls. Here those weights are folded into fp32 initializers once,
then ``onnxruntime.quantization.quantize_dynamic`` turns the MatMuls into integer kernels (int8 weights, one
scale per output column; activations quantized per batch at run time). Per-tensor weights drift too far (cosine
0.942 to the fp32 vectors): only per-channel is offered. ``BENCHMARKS.md`` ("A real int8 embedder") has the
variants measured.

The result is cached in the data directory under a name that hashes the source model, the quantization and the
onnxruntime version (a new onnxruntime may quantize differently), next to a ``.sha256`` file written when it was
built; every load checks the file against it and rebuilds a missing or corrupt one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import onnxruntime as ort

from retrieval.errors import EmbedderError

if TYPE_CHECKING:
    import onnx

logger = logging.getLogger(__name__)

# The weight MatMuls of one BERT layer, in graph order; the attention scores and context MatMuls multiply two
# activations and stay fp32 (quantize_dynamic quantizes only MatMuls with a constant B).
ROLES = ("query", "key", "value", "attention_out", "ffn_in", "ffn_out")


@dataclass(frozen=True)
class Quantization:
    """Which weight MatMuls become int8.

    Args:
        keep_fp32: MatMuls left in fp32, each ``"<layer>.<role>"`` (``"5.ffn_out"``), a role in every layer
            (``"ffn_out"``) or a whole layer (``"5"``); roles are those of ``ROLES``.
        reduce_range: 7-bit weights, for CPUs without VNNI whose u8s8 kernels may saturate.
    """

    keep_fp32: tuple[str, ...] = ()
    reduce_range: bool = False

    def key(self) -> str:
        return f"keep={','.join(self.keep_fp32)};reduce_range={self.reduce_range}"


def weight_matmuls(model: onnx.ModelProto) -> list[tuple[int, str, str]]:
    """(layer, role, node name) of every MatMul whose B input is a weight, in graph order."""
    produced = {out: node for node in model.graph.node for out in node.output}
    initializers = {init.name for init in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type != "MatMul":
            continue
        weight = node.input[1]
        source = produced.get(weight)
        if weight in initializers or (source is not None and source.op_type == "Mul" and _int8_chain(source, produced)):
            found.append(node.name)
    if len(found) % len(ROLES):
        raise EmbedderError(f"unexpected model layout: {len(found)} weight MatMuls, not a multiple of {len(ROLES)}")
    return [(n // len(ROLES), ROLES[n % len(ROLES)], name) for n, name in enumerate(found)]


def _int8_chain(mul: onnx.NodeProto, produced: dict[str, onnx.NodeProto]) -> bool:
    """Whether ``mul`` computes ``Cast(int8 weight) * scale``, the packaged model's dequantization."""
    cast = produced.get(mul.input[0])
    return cast is not None and cast.op_type == "Cast"


def fold_weights(model: onnx.ModelProto) -> None:
    """Replace each weight MatMul's ``Cast(int8) * scale`` by the fp32 product, in place (quantize_dynamic only
    quantizes MatMuls whose B is an initializer). The embedding tables keep their int8 form."""
    from onnx import numpy_helper

    produced = {out: node for node in model.graph.node for out in node.output}
    initializers = {init.name: init for init in model.graph.initializer}
    matmuls = {name for _, _, name in weight_matmuls(model)}
    dropped_nodes, dropped_inits = set(), set()
    for node in model.graph.node:
        if node.name not in matmuls or node.input[1] in initializers:
            continue
        mul = produced[node.input[1]]
        cast = produced[mul.input[0]]
        weights = numpy_helper.to_array(initializers[cast.input[0]]).astype("float32")
        scale = numpy_helper.to_array(initializers[mul.input[1]])
        model.graph.initializer.append(numpy_helper.from_array(weights * scale, node.input[1]))
        dropped_nodes |= {mul.name, cast.name}
        dropped_inits |= {cast.input[0], mul.input[1]}
    kept = [n for n in model.graph.node if n.name not in dropped_nodes]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    kept_inits = [i for i in model.graph.initializer if i.name not in dropped_inits]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept_inits)


def _selected(layer: int, role: str, selectors: tuple[str, ...]) -> bool:
    return any(s in (str(layer), role, f"{layer}.{role}") for s in selectors)


def quantize(source: Path, target: Path, quantization: Quantization) -> None:
    """Write the int8 model of ``source`` to ``target``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    fold_weights(model)
    excluded = [name for layer, role, name in weight_matmuls(model) if _selected(layer, role, quantization.keep_fp32)]
    # quantize_dynamic logs on the root logger: a warning to run shape pre-processing first and a line per tensor,
    # hints for a model's author that a user building this at first load can do nothing about.
    root = logging.getLogger()
    root.addFilter(_quantizer_notes)
    try:
        quantize_dynamic(model, target, op_types_to_quantize=["MatMul"], per_channel=True,
                         reduce_range=quantization.reduce_range, weight_type=QuantType.QInt8,
                         nodes_to_exclude=excluded)
    finally:
        root.removeFilter(_quantizer_notes)


def _quantizer_notes(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR or f"onnxruntime{os.sep}quantization" not in record.pathname


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read a megabyte at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_model(
    source: Path, source_sha256: str, quantization: Quantization, cache_dir: Path, name: str
) -> tuple[Path, str]:
    """The int8 model of ``source`` in ``cache_dir`` and its SHA-256: built on first use, checked against its
    SHA-256 on every call, rebuilt when missing or corrupt.

    Args:
        source: the packaged model (already checked against ``source_sha256``).
        source_sha256: its SHA-256, part of the cache name so that a new package builds a new file.
        quantization: what to quantize, also part of the cache name.
        cache_dir: a writable folder (``<data dir>/models``).
        name: the embedder's name, for the file name and the messages.
    """
    key = hashlib.sha256(f"{source_sha256};{quantization.key()};ort={ort.__version__}".encode()).hexdigest()[:12]
    model, checksum = cache_dir / f"{name}-{key}.onnx", cache_dir / f"{name}-{key}.onnx.sha256"
    if model.is_file() and checksum.is_file():
        digest = checksum.read_text().strip()
        if file_sha256(model) == digest:
            return model, digest
        logger.warning("%s does not match its SHA-256: building it again", model)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Built under a temporary name and renamed: a process reading the cache never sees half a file.
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=f".{name}-") as tmp:
            built = Path(tmp) / "model.onnx"
            logger.info("building the int8 model %s from %s (once per data directory)", model.name, source)
            quantize(source, built, quantization)
            digest = file_sha256(built)
            os.replace(built, model)
        checksum.write_text(digest + "\n")
    except OSError as exc:
        raise EmbedderError(f"cannot write the int8 model to {cache_dir} ({exc.strerror or exc}): set "
                            "CITEBOT_DATA_DIR to a folder you may write") from exc
    return model, digest
