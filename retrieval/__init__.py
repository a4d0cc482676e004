"""citebot's retrieval library: documents in, cited answers out. It knows nothing of chat platforms.

    from retrieval import Pipeline, RetrievalSettings
    pipeline = Pipeline(RetrievalSettings())
    pipeline.index([Path("docs/")])
    print(pipeline.ask("What are the therapeutic targets in the TME?").text)
"""

from typing import TYPE_CHECKING, Any

from retrieval.citations import MARKER
from retrieval.errors import CitebotError, ConfigError, EmbedderError, LLMError, LoadError, StoreError
from retrieval.prompts import (
    HANDED_TO_SERVER_NOTICE,
    NOT_FOUND_PHRASE,
    STORE_SERVED_ERROR,
    WAITING_FOR_WRITER_NOTICE,
)
from retrieval.types import Answer, Citation, Passage, Scope, Turn, folder_of

if TYPE_CHECKING:
    from retrieval import answer_eval, evaluate, owner
    from retrieval.background import Background
    from retrieval.grouping import group_by_meaning
    from retrieval.llm import SentenceCallback
    from retrieval.pipeline import Pipeline
    from retrieval.settings import RetrievalSettings, env_alias, setting_error
    from retrieval.sync import ProgressFn, SyncReport, max_file_bytes, skip_reason
    from retrieval.watch import Watcher

__all__ = [
    "Answer",
    "answer_eval",
    "Background",
    "Citation",
    "CitebotError",
    "ConfigError",
    "EmbedderError",
    "env_alias",
    "evaluate",
    "folder_of",
    "group_by_meaning",
    "HANDED_TO_SERVER_NOTICE",
    "LLMError",
    "LoadError",
    "MARKER",
    "max_file_bytes",
    "NOT_FOUND_PHRASE",
    "owner",
    "Passage",
    "Pipeline",
    "ProgressFn",
    "RetrievalSettings",
    "Scope",
    "SentenceCallback",
    "setting_error",
    "skip_reason",
    "STORE_SERVED_ERROR",
    "StoreError",
    "SyncReport",
    "Turn",
    "WAITING_FOR_WRITER_NOTICE",
    "Watcher",
]

# Name -> the module holding it (or that module itself), imported on first use.
_LAZY = {"answer_eval": "retrieval.answer_eval", "Background": "retrieval.background", "owner": "retrieval.owner",
         "Watcher": "retrieval.watch", "Pipeline": "retrieval.pipeline", "ProgressFn": "retrieval.sync",
         "SentenceCallback": "retrieval.llm", "SyncReport": "retrieval.sync", "evaluate": "retrieval.evaluate",
         "group_by_meaning": "retrieval.grouping", "max_file_bytes": "retrieval.sync", "skip_reason": "retrieval.sync",
         "RetrievalSettings": "retrieval.settings", "env_alias": "retrieval.settings",
         "setting_error": "retrieval.settings"}


def __getattr__(name: str) -> Any:
    # The pipeline imports chromadb and onnxruntime, the evaluations pytrec_eval, the settings pydantic: load
    # them only when needed, so that `citebot --help` costs about a bare Python start.
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        return module if module.__name__ == f"retrieval.{name}" else getattr(module, name)
    raise AttributeError(f"module 'retrieval' has no attribute {name!r}")
