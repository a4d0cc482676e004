"""Answers written by a language model at any OpenAI-compatible endpoint, streamed, then verified.

``ChatClient`` talks to the endpoint (OpenAI, vLLM, Ollama, a llama.cpp server, Azure) through LangChain's
``ChatOpenAI`` and the ``openai`` client under it: timeouts, retries with backoff, token usage, and one
``LLMError`` with a short reason for every way the call can fail. ``LLMAnswerer`` numbers the passages,
streams the answer's tokens to a plain callback as they arrive, then lets ``grounding`` keep only the
sentences whose citations verify. Nothing here counts tokens locally: tiktoken would download its files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import openai
from langchain_core.messages import AIMessageChunk
from langchain_openai import ChatOpenAI

from retrieval.answer import declined
from retrieval.citations import verify
from retrieval.embeddings import Embedder
from retrieval.errors import LLMError, UnverifiedAnswerError
from retrieval.grounding import SupportChecker, VerifiedStream, declines, ground, number_passages, strip_markers
from retrieval.prompts import ANSWER_SYSTEM_PROMPT, ANSWER_USER_PROMPT, UNSUPPORTED_REMOVED_NOTICE
from retrieval.settings import RetrievalSettings
from retrieval.types import Answer, Passage, Turn

logger = logging.getLogger(__name__)

TokenCallback = Callable[[str], None]  # each token as the model streams it
SentenceCallback = Callable[[str], None]  # each verified sentence of an answer, markers removed
Messages = Sequence[tuple[str, str]]  # (role, text): "system", "human" or "ai"

COOLDOWN = 30.0  # seconds a failed endpoint is not called again, so an outage costs one timeout, not several
_BACKOFF = 0.5  # seconds before retrying a malformed reply; doubles each time

# US dollars per million (prompt, completion) tokens, for the cost estimate in the logs.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-3.5-turbo": (0.50, 1.50),
}


def estimate_cost(model: str, usage: dict[str, int]) -> float:
    """Dollars a call cost at the model's list price; 0 for models not in ``PRICES`` (local ones)."""
    prompt_price, completion_price = PRICES.get(model, (0.0, 0.0))
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return (prompt * prompt_price + completion * completion_price) / 1e6


@dataclass(frozen=True)
class Generation:
    """What the model wrote, the tokens the endpoint says it used, and how long it took."""

    text: str
    usage: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class _MalformedReply(Exception):
    """The endpoint answered, but not with a usable chat completion."""

    def __init__(self, streamed: bool) -> None:
        super().__init__("malformed reply")
        self.streamed = streamed  # tokens already went to the caller, so a retry would repeat them


class ChatClient:
    """Chat completions from the endpoint ``settings`` name, streamed.

    The ``openai`` client retries refused connections, timeouts and 5xx with backoff
    (``llm_max_retries``); this class retries malformed replies the same number of times. After a failure
    the endpoint rests for ``COOLDOWN`` seconds: calls meanwhile fail at once with the same reason.
    """

    def __init__(self, settings: RetrievalSettings) -> None:
        self.settings = settings
        self.model = ChatOpenAI(
            model=settings.llm_model,
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
            streaming=True,
            stream_usage=True,
            temperature=0,
            # In the body as ``max_tokens``: llama.cpp's server ignores ``max_completion_tokens``.
            extra_body={"max_tokens": settings.llm_max_tokens},
        )
        self._down_until = 0.0
        self._down_reason = ""

    def generate(self, messages: Messages, on_token: TokenCallback | None = None) -> Generation:
        """Send ``messages``; pass each token to ``on_token`` as it arrives; raise LLMError on failure."""
        if time.monotonic() < self._down_until:
            raise LLMError(self._down_reason)
        try:
            generation = self._generate_with_retries(messages, on_token)
        except LLMError as exc:
            self._down_until, self._down_reason = time.monotonic() + COOLDOWN, str(exc)
            logger.warning("language model call failed: %s", exc)
            raise
        _log_usage(self.settings.llm_model, generation.usage)
        return generation

    def _generate_with_retries(self, messages: Messages, on_token: TokenCallback | None) -> Generation:
        retries, attempt = self.settings.llm_max_retries, 0
        while True:
            try:
                return self._stream(messages, on_token)
            except _MalformedReply as exc:
                if exc.streamed or attempt == retries:
                    raise LLMError("malformed reply from the endpoint") from exc
                attempt += 1
                logger.info("malformed reply from the endpoint; retry %d of %d", attempt, retries)
                time.sleep(_BACKOFF * 2 ** (attempt - 1))
            except openai.APIError as exc:
                raise LLMError(_reason(exc, self.settings)) from exc

    def _stream(self, messages: Messages, on_token: TokenCallback | None) -> Generation:
        start = time.perf_counter()
        pieces: list[str] = []
        usage: dict[str, int] = {}
        for chunk in self._chunks(messages, pieces):
            if chunk.usage_metadata:
                meta = chunk.usage_metadata
                usage = {
                    "prompt_tokens": meta["input_tokens"],
                    "completion_tokens": meta["output_tokens"],
                    "total_tokens": meta["total_tokens"],
                }
            if chunk.text:
                pieces.append(chunk.text)
                if on_token is not None:
                    on_token(chunk.text)
        text = "".join(pieces).strip()
        if not text:
            raise _MalformedReply(streamed=bool(pieces))
        return Generation(text, usage, time.perf_counter() - start)

    def _chunks(self, messages: Messages, pieces: list[str]) -> Iterator[AIMessageChunk]:
        """The stream's chunks; undecodable events become ``_MalformedReply``."""
        stream = self.model.stream(list(messages))
        while True:
            try:
                chunk = next(stream)
            except StopIteration:
                return
            except (ValueError, KeyError, TypeError) as exc:  # bad JSON or a body that is no completion
                raise _MalformedReply(streamed=bool(pieces)) from exc
            if isinstance(chunk, AIMessageChunk):
                yield chunk


def _reason(exc: openai.APIError, settings: RetrievalSettings) -> str:
    """A short, secret-free reason for the user: what failed, and what to check where it helps."""
    if isinstance(exc, openai.APITimeoutError):
        return f"no reply within {settings.llm_timeout:g} s"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot connect to {_endpoint(settings.openai_base_url)}"
    if isinstance(exc, openai.APIStatusError):
        hints = {401: "check OPENAI_API_KEY", 403: "check OPENAI_API_KEY", 429: "rate limited"}
        hints[404] = f"is the model {settings.llm_model!r} served there?"
        hint = hints.get(exc.status_code)
        return f"HTTP {exc.status_code}" + (f", {hint}" if hint else "")
    return "the endpoint returned an error"


def _endpoint(url: str | None) -> str:
    """Where the calls go, fit to show users: without the credentials or query string keys may ride in."""
    if not url:
        return "the OpenAI API"
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


class LLMAnswerer:
    """Cited answers written by a language model; only sentences whose citations verify reach the user.

    Args:
        settings: the endpoint, model, timeout and retries, and ``max_sentences``.
        embedder: what the support check compares claims and passage sentences with.
        chat: the chat client; by default one built from ``settings``.
    """

    def __init__(self, settings: RetrievalSettings, embedder: Embedder, *, chat: ChatClient | None = None) -> None:
        self.settings = settings
        self.chat = chat or ChatClient(settings)
        self.checker = SupportChecker(embedder)

    def answer(
        self,
        question: str,
        passages: list[Passage],
        history: Sequence[Turn] = (),
        on_sentence: SentenceCallback | None = None,
    ) -> Answer:
        """Answer from ``passages`` (cited as [1]..[k] in the prompt), streaming verified sentences to ``on_sentence``.

        Raises LLMError when the endpoint fails, UnverifiedAnswerError when no sentence verifies.
        """
        t0 = time.perf_counter()
        stream = VerifiedStream(passages, self.checker, on_sentence) if on_sentence else None
        generation = self.chat.generate(self._messages(question, passages, history), stream)
        if stream:
            stream.finish()
        t1 = time.perf_counter()
        if declines(generation.text):
            answer = declined(question, passages)
        else:
            answer = self._grounded(question, passages, generation.text)
        answer.mode, answer.usage = "llm", generation.usage
        answer.timings.update(generate=t1 - t0, verify=time.perf_counter() - t1)
        return answer

    def _messages(self, question: str, passages: Sequence[Passage], history: Sequence[Turn]) -> Messages:
        """The chat the model sees: rules, the last ``history_turns`` turns (uncited), then the numbered passages."""
        system = ANSWER_SYSTEM_PROMPT.format(max_sentences=self.settings.max_sentences)
        turns: list[tuple[str, str]] = []
        for asked, answered in history[max(0, len(history) - self.settings.history_turns) :]:
            # Old markers would clash with this answer's numbering.
            turns += [("human", asked), ("ai", strip_markers(answered))]
        user = ANSWER_USER_PROMPT.format(passages=number_passages(passages), question=question)
        return [("system", system), *turns, ("human", user)]

    def _grounded(self, question: str, passages: list[Passage], text: str) -> Answer:
        grounded = ground(text, passages, self.checker)
        if not grounded.citations:
            raise UnverifiedAnswerError(f"none of the answer's sentences verified ({grounded.removed} removed)")
        notice = UNSUPPORTED_REMOVED_NOTICE.format(count=grounded.removed) if grounded.removed else ""
        answer = Answer(question, grounded.text, grounded.citations, passages, True, notice=notice)
        problems = verify(answer)
        if problems:  # grounding guarantees none; this is the last line of defence
            raise UnverifiedAnswerError("; ".join(problems))
        return answer


def _log_usage(model: str, usage: dict[str, int]) -> None:
    if not usage:
        logger.info("llm call to %s: the endpoint reported no token usage", model)
        return
    logger.info(
        "llm call to %s: %d prompt + %d completion tokens, about $%.5f",
        model,
        usage.get("prompt_tokens", 0),
        usage.get("completion_tokens", 0),
        estimate_cost(model, usage),
    )
