"""Short texts (questions people asked) grouped by meaning: the packaged embedder, then leader clustering.

Each text joins the group whose centroid is most similar to it (cosine) when that similarity reaches the
threshold, and starts a group of its own otherwise; a second pass moves every text to its best centroid, so
the result depends little on the order the texts came in. Linear in texts times groups: a year of declined
questions groups in seconds. ``bench/gaps.py`` measures the threshold's precision and recall on scripted
paraphrases (BENCHMARKS.md, "Gaps").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.embeddings import Embedder, get_embedder
from retrieval.settings import RetrievalSettings

GROUP_SIMILARITY = 0.45  # cosine a text needs with a group's centroid to join it: bench/gaps.py picks it


def group_by_meaning(texts: Sequence[str], settings: RetrievalSettings, *, similarity: float = GROUP_SIMILARITY,
                     embedder: Embedder | None = None) -> list[list[int]]:
    """The indexes of ``texts`` in groups of the same meaning, largest group first (ties: first seen first).

    Args:
        texts: the texts, e.g. questions.
        settings: names the packaged embedder used when ``embedder`` is not given.
        similarity: the cosine a text needs with a group's centroid to join it.
        embedder: embeds the texts; by default the one ``settings`` names.
    """
    if not texts:
        return []
    embedder = embedder or get_embedder(settings.embedder, batch_size=settings.embed_batch_size,
                                         data_dir=settings.data_dir)
    vectors = np.asarray(embedder.embed([" ".join(t.split()).lower() for t in texts]), dtype=np.float32)
    labels = _leaders(vectors, similarity)
    labels = _reassign(vectors, labels, similarity)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    return sorted(groups.values(), key=lambda members: (-len(members), members[0]))


def _leaders(vectors: np.ndarray, similarity: float) -> np.ndarray:
    """One pass: each vector joins the most similar centroid at or above ``similarity``, or leads a new group."""
    sums = np.zeros_like(vectors)
    labels = np.empty(len(vectors), dtype=np.int64)
    groups = 0
    for i, vector in enumerate(vectors):
        if groups:
            scores = _unit(sums[:groups]) @ vector
            best = int(np.argmax(scores))
            if scores[best] >= similarity:
                labels[i] = best
                sums[best] += vector
                continue
        labels[i] = groups
        sums[groups] = vector
        groups += 1
    return labels


def _reassign(vectors: np.ndarray, labels: np.ndarray, similarity: float) -> np.ndarray:
    """Move each vector to its most similar centroid (of the first pass) when that reaches ``similarity``."""
    count = int(labels.max()) + 1
    centroids = _unit(np.stack([vectors[labels == g].sum(axis=0) for g in range(count)]))
    scores = vectors @ centroids.T
    best = scores.argmax(axis=1)
    keep = scores[np.arange(len(vectors)), best] < similarity
    return np.where(keep, labels, best)


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
