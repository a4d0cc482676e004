"""citebot's retrieval library: documents in, cited answers out. It knows nothing of chat platforms.

    from retrieval import Pipeline, RetrievalSettings
    pipeline = Pipeline(RetrievalSettings())
    pipeline.index([Path("docs/")])
    print(pipeline.ask("What are the therapeutic targets in the TME?").text)
"""

from typing import TYPE_CHECKING, Any

from retrieval.errors import CitebotError, ConfigError, EmbedderError, LLMError, LoadError, StoreError
from retrieval.prompts import NOT_FOUND_PHRASE
from retrieval.settings import RetrievalSettings
from retrieval.types import Answer, Citation, Passage

if TYPE_CHECKING:
    from retrieval.pipeline import Pipeline
    from retrieval.sync import SyncReport

__all__ = [
    "NOT_FOUND_PHRASE",
    "Answer",
    "Citation",
    "CitebotError",
    "ConfigError",
    "EmbedderError",
    "LLMError",
    "LoadError",
    "Passage",
    "Pipeline",
    "RetrievalSettings",
    "StoreError",
    "SyncReport",
]

_LAZY = {"Pipeline": "retrieval.pipeline", "SyncReport": "retrieval.sync"}


def __getattr__(name: str) -> Any:
    # The pipeline imports chromadb and onnxruntime: load them only for code that needs them.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'retrieval' has no attribute {name!r}")
