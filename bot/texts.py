"""What the bots say on their own behalf, in one place: refusals, limits, usage hints, help, thanks.

Answers and their labels are the retrieval library's (``retrieval.prompts``) and the renderer's; everything
here is what a chat user reads from the bot itself. Placeholders are filled where the text is sent.
"""

REFUSAL_TEXT = "Sorry, I only answer in chats I have been set up for. Please ask the bot's administrator."
USAGE_TEXT = "Send me a question about the indexed documents as text, and I will answer with citations."
RATE_LIMIT_TEXT = "You are asking faster than I can keep up. Please wait {seconds} s and ask again."
ERROR_TEXT = "Sorry, something went wrong while answering. Please try again in a moment."
TRUNCATED_NOTICE = "Your question was long; I only read its first {limit:,} characters."
# One answer to every button the core turns down, so a click cannot tell a foreign answer from a missing one.
UNAVAILABLE_TEXT = "Sorry, that answer is not available here."
VOTE_THANKS = "Thanks for the feedback: your {emoji} is recorded."

# Telegram
START_TEXT = "Hi! I answer questions from the team's documents, with citations."
HELP_TEXT = (
    "I answer from the indexed documents only, and every claim ends with a number [n] naming the passage it "
    "comes from; the sources are listed under the answer.\n\n"
    "In a private chat, just send your question. In a group, mention me (@{username}), reply to one of my "
    "messages, or write /ask followed by your question.\n\n"
    "Follow-up questions (\"and which of those are in trials?\") use the last few exchanges of the chat. "
    "Under each answer, Sources shows the quoted passages, and 👍 / 👎 tell the team whether it helped."
)
TEXT_ONLY = "I can only read text questions. Please type your question."
ASK_USAGE = "Put your question after the command, for example: /ask What are the therapeutic targets?"
COMMAND_USAGE = "I know /ask, /help and /start; or just send me your question."
NOTHING_INDEXED = "Nothing is indexed yet: ask the bot's administrator to run `citebot index`."
INDEXED_EXAMPLES = "{count} indexed, for example:\n{listed}{more}"

# Help desk ("Ask a person")
ASK_PERSON_BUTTON = "Ask a person"
ESCALATION_TEXT = (
    "{asker} asked a person.\n\nQuestion: {question}\n\nMy answer: {answer}\n\n{link}"
    "Reply to this message (in its thread on Slack) and I will pass your answer on and keep it as a source."
)
ESCALATION_LINK = "Original conversation: {link}\n\n"
ESCALATED_TEXT = "I asked the help desk; a person's answer will appear here."
ALREADY_ESCALATED = "The help desk has been asked about this answer already."
ESCALATION_FAILED = "Sorry, I could not reach the help desk. Please try again in a moment."
RELAY_TEXT = "Answer from {responder}: {text}"
RELAYED_TEXT = "Passed on to the asker, and saved as a source ({document}) for the next similar question."
RELAYED_UNSAVED = "Passed on to the asker; saving it as a source failed (see the bot's log)."
RELAY_FAILED = "Sorry, I could not pass this on to the asker. Please reply again in a moment."
WITHDRAW_BUTTON = "Withdraw"
WITHDRAWN_TEXT = "Withdrawn: that answer is no longer a source."
WITHDRAW_FAILED = "Sorry, I could not withdraw that answer. Please try again in a moment."

# Documents posted in chat by an admin
UPLOAD_REFUSED = "Sorry, only the bot's administrators can add documents; please send your question as text."
UPLOAD_ADDED = "Indexed {name} ({passages}): questions about it are answered from now on."
UPLOAD_UPDATED = "Re-indexed {name} ({passages}): answers now come from this version."
UPLOAD_UNCHANGED = "{name} is indexed already, unchanged."
UPLOAD_SKIPPED = "Not indexed: {name}: {reason}. Nothing was added."
UPLOAD_FAILED = "Sorry, I could not fetch or index {name}. Please try again in a moment."

# The weekly digest of what the documents are missing (citebot gaps)
DIGEST_TEXT = ("Questions the documents did not answer in the last {days} days ({questions} questions in "
               "{groups} groups), most asked first:")
DIGEST_LINE = "• {count}× {question}"
DIGEST_VARIANTS = " (also: {variants})"
DIGEST_ANSWERED = " [a person's answer is kept]"
