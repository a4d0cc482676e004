"""Exceptions raised by citebot's retrieval library.

    CitebotError
    ├── ConfigError        a setting is missing or inconsistent
    ├── LoadError          a document could not be read (corrupt, empty, encrypted, unsupported)
    ├── EmbedderError      the packaged embedding model is missing or does not match its checksum
    ├── StoreError         the vector store (Chroma) is unreachable or failed
    └── LLMError           the OpenAI-compatible endpoint failed, timed out or answered garbage
        └── UnverifiedAnswerError  the model answered, but no sentence of it verified against its passages
"""


class CitebotError(Exception):
    """Base class of every error citebot raises on purpose."""


class ConfigError(CitebotError):
    """A setting is missing or inconsistent."""


class LoadError(CitebotError):
    """A document could not be loaded; the message is the one-line reason shown to the user."""


class EmbedderError(CitebotError):
    """The embedding model could not be loaded."""


class StoreError(CitebotError):
    """The vector store failed or is unreachable."""


class LLMError(CitebotError):
    """The language-model endpoint failed."""


class UnverifiedAnswerError(LLMError):
    """The language model's answer had no sentence whose citation its passages support."""
