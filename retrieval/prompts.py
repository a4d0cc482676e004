"""Every text citebot shows a model or says on its own behalf, in one place.

``NOT_FOUND_PHRASE`` is shared by the extractive answerer, the LLM prompt and the tests.
"""

NOT_FOUND_PHRASE = "Not found in the documents"

NOT_FOUND_PROMPT = (
    NOT_FOUND_PHRASE + ": none of the indexed passages answers this question. "
    "The closest passages are listed below, uncited."
)
