"""LangChain's face of an ``Embedder``, for LangChain code (a ``langchain_chroma.Chroma`` store, a retriever).

Apart from ``embeddings``: ``langchain_core.embeddings`` loads LangChain's runnables (0.4-0.6 s), which
nothing on the question path needs.
"""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from retrieval.embeddings import Embedder


class LangChainEmbeddings(Embeddings):
    """LangChain's face of an ``Embedder``."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed([text])[0].tolist()
