"""The types that flow from documents to a cited answer.

A source file becomes LangChain ``Document`` chunks (``chunking``), stored in Chroma (``store``); a search
returns ``Passage`` objects (a chunk plus its scores); an ``Answer`` quotes sentences of passages through
``Citation`` objects, each pointing at exactly one retrieved passage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import Any, NamedTuple


class Turn(NamedTuple):
    """One earlier exchange of a conversation: what was asked and what was answered."""

    question: str
    answer: str


def folder_of(source: str) -> str:
    """The folder of a document's ``source`` (its path relative to its indexed root): "" at the root itself."""
    parent = PurePosixPath(source).parent.as_posix()
    return "" if parent == "." else parent


@dataclass(frozen=True)
class Scope:
    """Which documents a search may see: those in one of ``folders``, or below one.

    A folder is a path relative to any indexed root ("hr", "teams/ops") or a glob of one ("teams/*/runbooks");
    "." is the roots themselves, so it covers everything. Searches filter on it inside both sides, so the
    best passages are the best of the scope and nothing outside it is ever retrieved.
    """

    folders: frozenset[str]

    @classmethod
    def of(cls, folders: Iterable[str]) -> Scope:
        return cls(frozenset(_normal(f) for f in folders))

    def covers(self, folder: str) -> bool:
        """Whether a document in ``folder`` (as ``folder_of`` gives it) is inside the scope."""
        parts = folder.split("/") if folder else []
        ancestors = [""] + ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        return any(fnmatchcase(a, pattern) for pattern in self.folders for a in ancestors)


def _normal(folder: str) -> str:
    path = PurePosixPath(folder.strip().replace("\\", "/")).as_posix()
    return "" if path == "." else path


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk: its text, where it comes from, and how it scored."""

    id: str
    text: str
    metadata: dict[str, Any]
    score: float = 0.0
    dense_score: float | None = None  # cosine similarity to the question, when the dense side saw it
    dense_rank: int | None = None
    keyword_rank: int | None = None

    @property
    def source(self) -> str:
        return str(self.metadata.get("source", ""))

    @property
    def title(self) -> str:
        return str(self.metadata.get("title") or self.source)

    @property
    def document(self) -> tuple[str, str]:
        """(root, source): which document of which indexed folder the passage is from."""
        return str(self.metadata.get("root", "")), self.source

    @property
    def location(self) -> str:
        """'page 3', 'section Methods' or '' where the document has neither."""
        if self.metadata.get("page"):
            return f"page {self.metadata['page']}"
        if self.metadata.get("section"):
            return f"section {self.metadata['section']}"
        return ""


@dataclass(frozen=True)
class Citation:
    """One quote of an answer: the passage, the exact words quoted from it, and its source's number.

    The number is the source document's: two quotes of one document share it.

    ``start``/``end`` index the quote inside ``passage.text``; ``source_start``/``source_end`` index it
    inside the whole extracted text of the source document.
    """

    number: int
    passage: Passage
    quote: str
    start: int
    end: int

    @property
    def document(self) -> tuple[str, str]:
        return self.passage.document

    @property
    def source_start(self) -> int:
        return int(self.passage.metadata.get("start", 0)) + self.start

    @property
    def source_end(self) -> int:
        return int(self.passage.metadata.get("start", 0)) + self.end

    @property
    def identifiers(self) -> dict[str, str]:
        """DOI, PMID and PMCID where the document carries them."""
        keys = ("doi", "pmid", "pmcid")
        return {k: str(self.passage.metadata[k]) for k in keys if self.passage.metadata.get(k)}


@dataclass
class Answer:
    """What citebot says to a question: text with ``[n]`` markers, the citations, and how it got there.

    ``found`` is False when the documents do not answer the question; ``text`` then says so and
    ``passages`` holds the closest ones, none of them cited.
    """

    question: str
    text: str
    citations: list[Citation]
    passages: list[Passage]
    found: bool
    mode: str = "extractive"  # or "llm"
    notice: str = ""  # shown to the user, e.g. why an LLM answer fell back to the extractive one
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as ``citebot ask --json`` prints it."""
        data = asdict(self)
        data["citations"] = [
            {
                "number": c.number,
                "quote": c.quote,
                "passage_id": c.passage.id,
                "title": c.passage.title,
                "source": c.passage.source,
                "location": c.passage.location,
                "source_start": c.source_start,
                "source_end": c.source_end,
                **c.identifiers,
            }
            for c in self.citations
        ]
        return data
