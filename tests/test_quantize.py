"""The int8 embedder built at first load: cached in the data dir, SHA-checked, close to fp32, usable end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from bot.cli import cli
from retrieval import quantize
from retrieval.embeddings import MODELS, OnnxEmbedder, get_embedder
from retrieval.errors import ConfigError, EmbedderError
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
SENTENCES = [
    "PD-1 and CTLA-4 immune checkpoint inhibitors reactivate T cells against tumours.",
    "Cancer-associated fibroblasts remodel the extracellular matrix of the tumour stroma.",
    "Knead the dough for ten minutes, then let the bread rise in a warm place.",
    "What are the therapeutic targets in the TME?",
    "The striker scored twice in the second half and the team won the cup. " * 6,
]


@pytest.fixture
def built(int8_models: Path) -> Path:
    """The session's models folder (conftest builds it once); tests that break a file break a copy."""
    return int8_models


def _models_copy(built: Path, data_dir: Path) -> Path:
    """A data dir whose models folder is a copy of the session's (not the links conftest makes), so a test may
    break its copy."""
    shutil.copytree(built, data_dir / "models", dirs_exist_ok=True, copy_function=shutil.copyfile)
    return data_dir / "models"


def _loaded(cache_dir: Path) -> OnnxEmbedder:
    """The int8 embedder with its model taken from (or built into) ``cache_dir``."""
    embedder = OnnxEmbedder(MODELS["minilm-l6-qint8"], cache_dir=cache_dir)
    embedder.load()
    return embedder


def test_int8_model_uses_integer_kernels_and_keeps_the_embedding_table_small(built: Path) -> None:
    (model,) = built.glob("*.onnx")
    ops = {node.op_type for node in onnx.load(str(model)).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    assert model.stat().st_size < 30 * 2**20  # the word embeddings stay int8 (fp32 would be 47 MB)
    assert (built / f"{model.name}.sha256").read_text().strip() == quantize.file_sha256(model)


def test_int8_vectors_are_close_to_fp32(built: Path) -> None:
    fp32 = get_embedder("minilm-l6-int8").embed(SENTENCES)
    int8 = _loaded(built).embed(SENTENCES)
    assert int8.shape == fp32.shape and int8.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(fp32 * int8, axis=1)) > 0.99
    # A lone word drifts more (0.986 for this one, BENCHMARKS.md "A real int8 embedder").
    word = get_embedder("minilm-l6-int8").embed(["short"]) @ _loaded(built).embed(["short"]).T
    assert word[0, 0] > 0.98


def test_cached_model_is_reused_without_building(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = _models_copy(built, tmp_path)
    monkeypatch.setattr(quantize, "quantize", lambda *a: pytest.fail("built again"))
    _loaded(models)


def test_corrupt_or_missing_cache_is_rebuilt(built: Path, tmp_path: Path) -> None:
    models = _models_copy(built, tmp_path)
    (model,) = models.glob("*.onnx")
    good = model.read_bytes()
    model.write_bytes(good[:-100] + b"\0" * 100)
    _loaded(models)
    assert model.read_bytes() == good
    model.unlink()
    _loaded(models)
    assert model.read_bytes() == good


def test_unwritable_data_dir_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(EmbedderError, match="CITEBOT_DATA_DIR") as caught:
        _loaded(not_a_folder / "models")
    assert "\n" not in str(caught.value)


def test_embedder_change_on_an_existing_index_is_refused(settings: RetrievalSettings) -> None:
    Pipeline(settings).index([SEEDS])
    with pytest.raises(ConfigError, match="CITEBOT_EMBEDDER=minilm-l6-qint8"):
        Pipeline(settings.model_copy(update={"embedder": "minilm-l6-int8"}))


def test_an_index_built_before_the_default_changed_keeps_its_embedder(settings: RetrievalSettings) -> None:
    Pipeline(settings.model_copy(update={"embedder": "minilm-l6-int8"})).index([SEEDS])
    reopened = Pipeline(settings)  # CITEBOT_EMBEDDER not set: the default would be minilm-l6-qint8
    assert reopened.embedder.name == "minilm-l6-int8"
    assert reopened.ask("What are the therapeutic targets in the TME?").found


def test_cli_builds_the_int8_model_on_first_use_then_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "fresh-data"  # no model linked in: the first command builds it
    monkeypatch.setenv("CITEBOT_DATA_DIR", str(data))
    runner = CliRunner()
    indexed = runner.invoke(cli, ["index", str(SEEDS)])
    assert indexed.exit_code == 0, indexed.output
    assert len(list((data / "models").glob("minilm-l6-qint8-*.onnx"))) == 1
    asked = runner.invoke(cli, ["ask", "What are the therapeutic targets in the TME?"])
    assert asked.exit_code == 0, asked.output
    assert "[1]" in asked.output and "Sources:" in asked.output
