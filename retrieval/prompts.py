"""Every text the retrieval library shows a model or puts in an answer, in one place.

What the chat bots say on their own behalf (refusals, limits, help) is in ``bot.texts``.

``NOT_FOUND_PHRASE`` is shared by the extractive answerer, the LLM prompt and the tests.
"""

import string

NOT_FOUND_PHRASE = "Not found in the documents"

NOT_FOUND_PROMPT = (
    NOT_FOUND_PHRASE + ": none of the indexed passages answers this question. "
    "The closest passages are listed below, uncited."
)

# Language-model prompts. The passages arrive numbered [1]..[k]; grounding.py checks every [n] afterwards.
ANSWER_SYSTEM_PROMPT = (
    "You answer questions for a help desk using only the numbered passages you are given. "
    "Write at most {max_sentences} sentences of plain text, without headings or lead-ins. "
    "End every sentence with the number of the passage that states it, in square brackets: [1], or [1][3] "
    "when several do. Cite only the numbers given, state only what the cited passage says, and keep its "
    "wording, names and numbers. "
    "If the passages do not answer the question, reply with exactly: " + NOT_FOUND_PHRASE + "."
)

ANSWER_USER_PROMPT = "Passages:\n\n{passages}\n\nQuestion: {question}"

CONDENSE_QUESTION_PROMPT = (
    "Rewrite the user's last message as one standalone question that needs no conversation to be understood: "
    "replace words like 'it', 'they' or 'those' by what they refer to and keep the names and terms used. "
    "Do not answer it. Reply with the question only.\n\n"
    "Conversation:\n{history}\n\nLast message: {question}\n\nStandalone question:"
)

# What citebot tells the user when the language model's answer is changed or replaced.
UNSUPPORTED_REMOVED_NOTICE = "{count} unsupported sentence(s) removed."
LLM_UNVERIFIED_NOTICE = (
    "The language model's answer could not be verified against the documents; showing the extractive answer."
)
LLM_UNAVAILABLE_NOTICE = "The language model is unavailable ({reason}); showing the extractive answer."

# What citebot says when another process holds an embedded store's write lock (retrieval/owner.py).
HANDED_TO_SERVER_NOTICE = (
    "{command} (pid {pid}) serves the store in {data_dir}: it is indexing these paths and answers from them "
    "as soon as they are in."
)
WAITING_FOR_WRITER_NOTICE = "Waiting for {command} (pid {pid}) to finish writing the store in {data_dir}..."
STORE_SERVED_ERROR = (
    "{command} (pid {pid}) already serves the store in {data_dir}: run the front ends together with "
    "`citebot serve`, give this one another CITEBOT_DATA_DIR, or share a Chroma server (CHROMA_HOST)"
)


def placeholders(template: str) -> set[str]:
    """The ``{names}`` a template is formatted with."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def check_placeholders(template: str, expected: set[str]) -> None:
    """Raise ValueError unless ``template`` uses exactly the ``expected`` placeholders."""
    found = placeholders(template)
    if found != expected:
        unknown, missing = sorted(found - expected), sorted(expected - found)
        raise ValueError(f"template placeholders differ: unknown {unknown}, missing {missing}")
