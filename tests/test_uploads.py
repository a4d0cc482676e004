"""Documents posted in chat, end to end on both platforms: a listed admin sends a PDF or DOCX, the bot
downloads it from the platform (Telegram ``getFile``; Slack ``url_private_download`` with the bot token),
saves it in the inbox, indexes it and replies with the summary, and the next question is answered citing it.
Anybody else is refused in one line and nothing is downloaded; an unsupported file, and one that expands past
the extraction limit, are refused with the reason and nothing is indexed. The real PTB Application and Bolt
app run against the emulators, over a real pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot import slack_helpdesk
from bot.app import PipelineResponder, build_core
from bot.texts import UPLOAD_REFUSED
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from tests import test_helpdesk, test_slack, test_telegram
from tests.emulators.slack_api import SlackEmulator
from tests.emulators.telegram_api import TelegramEmulator, group_chat, private_chat
from tests.fixtures_docs import make_docx, make_pdf
from tests.test_slack import mention, next_ts, texts
from tests.test_telegram import ADA, BOB, MENTION, replies_to, serve

# The bots' fixtures and the two-document pipeline (canteen, parking), shared with their own tests.
slack, start_bot = test_slack.slack, test_slack.start_bot
telegram, configure, cores = test_telegram.telegram, test_telegram.configure, test_telegram.cores
pipeline = test_helpdesk.pipeline

POLICY = ["Travel expenses are reimbursed when the receipts are submitted within 30 days of the trip.",
          "Taxis are reimbursed only after 10 pm or when no train runs."]
QUESTION = "Within how many days must travel receipts be submitted?"
ADMIN_SLACK, OTHER_SLACK = "U0ADMIN", "U0OTHER"
TEAM_GROUP = group_chat(-1005555555555, "Team")


def inbox(settings: RetrievalSettings) -> Path:
    return settings.data_dir.with_name(f"{settings.data_dir.name}-inbox")  # BotSettings.inbox by default


def sources(pipeline: Pipeline) -> list[str]:
    return [s["source"] for s in pipeline.sources()]


@pytest.fixture
def policy_pdf(tmp_path: Path) -> bytes:
    return make_pdf(tmp_path / "made" / "travel.pdf", [" ".join(POLICY)], title="Travel policy").read_bytes()


@pytest.fixture
def policy_docx(tmp_path: Path) -> bytes:
    return make_docx(tmp_path / "made" / "travel.docx", [("Travel", POLICY)], title="Travel policy").read_bytes()


@pytest.fixture
def expanding_docx(tmp_path: Path) -> bytes:
    """A DOCX of under 50 KB that expands to about 105,000 characters (some 120 chunks) of text."""
    paragraph = "The stromal compartment of the tumour shapes how the immune cells respond to therapy. " * 4
    path = make_docx(tmp_path / "made" / "expanding.docx", [(f"Part {n}", [paragraph] * 10) for n in range(30)])
    assert path.stat().st_size < 50_000
    return path.read_bytes()


@pytest.fixture
def strict(settings: RetrievalSettings) -> RetrievalSettings:
    """The test's settings with a 50,000-character extraction limit (5,000,000 by default)."""
    return settings.model_copy(update={"max_extracted_chars": 50_000})


# --- Telegram ------------------------------------------------------------------------------------------


def test_telegram_admin_posts_a_pdf_and_the_next_question_cites_it(
    telegram: TelegramEmulator, configure, cores, pipeline, policy_pdf, settings
) -> None:
    bot_settings = configure(telegram_admins=[ADA["id"]], rate_limit_questions=0)
    core = cores(bot_settings, pipeline)

    async def scenario() -> None:
        posted = telegram.document(private_chat(ADA), ADA, "Travel policy.pdf", policy_pdf,
                                   mime_type="application/pdf")
        [summary] = await telegram.wait_for("sendMessage", where=replies_to(posted))
        assert summary.text.startswith("Indexed Travel_policy.pdf (1 passage)")
        assert [c.method for c in telegram.calls() if c.method in ("getFile", "download")] == ["getFile", "download"]
        question = telegram.send(private_chat(BOB), BOB, QUESTION)
        [answer] = await telegram.wait_for("sendMessage", where=replies_to(question))
        assert "30 days" in answer.text and "Travel policy" in answer.text.split("<b>Sources</b>")[1]

    serve(core, bot_settings, scenario)
    assert (inbox(settings) / "Travel_policy.pdf").read_bytes() == policy_pdf
    assert "Travel_policy.pdf" in sources(pipeline)


def test_telegram_refuses_documents_from_others_without_downloading_them(
    telegram: TelegramEmulator, configure, cores, pipeline, policy_pdf, settings
) -> None:
    bot_settings = configure(telegram_admins=[ADA["id"]])
    core = cores(bot_settings, pipeline)

    async def scenario() -> None:
        posted = telegram.document(private_chat(BOB), BOB, "travel.pdf", policy_pdf)
        [refused] = await telegram.wait_for("sendMessage", where=replies_to(posted))
        assert refused.text == UPLOAD_REFUSED
        # In a group, a document that does not mention the bot is not for it; one that does is refused too.
        telegram.document(TEAM_GROUP, BOB, "travel.pdf", policy_pdf)
        mentioned = telegram.document(TEAM_GROUP, BOB, "travel.pdf", policy_pdf, caption=f"{MENTION} index this")
        [refused_in_group] = await telegram.wait_for("sendMessage", where=replies_to(mentioned))
        assert refused_in_group.text == UPLOAD_REFUSED

    serve(core, bot_settings, scenario)
    assert len(telegram.delivered("sendMessage")) == 2
    assert not telegram.calls("getFile") and not telegram.calls("download")
    assert not inbox(settings).exists() and sources(pipeline) == ["canteen.md", "parking.md"]


def test_telegram_admin_in_a_group_and_files_the_index_skips(
    telegram: TelegramEmulator, configure, cores, settings, strict, policy_docx, expanding_docx
) -> None:
    limited = Pipeline(strict)
    bot_settings = configure(telegram_admins=[ADA["id"]])
    core = cores(bot_settings, limited)

    async def scenario() -> None:
        unsupported = telegram.document(private_chat(ADA), ADA, "setup.exe", b"MZ\x90\x00" * 100)
        [refused] = await telegram.wait_for("sendMessage", where=replies_to(unsupported))
        assert refused.text == "Not indexed: setup.exe: unsupported type .exe. Nothing was added."
        expanding = telegram.document(private_chat(ADA), ADA, "expanding.docx", expanding_docx)
        [skipped] = await telegram.wait_for("sendMessage", where=replies_to(expanding))
        assert skipped.text.startswith("Not indexed: expanding.docx: it expands to ")
        assert "CITEBOT_MAX_EXTRACTED_CHARS=50,000" in skipped.text
        in_group = telegram.document(TEAM_GROUP, ADA, "travel.docx", policy_docx, caption=f"{MENTION}")
        [added] = await telegram.wait_for("sendMessage", where=replies_to(in_group))
        assert added.text.startswith("Indexed travel.docx")

    serve(core, bot_settings, scenario)
    assert [c.params["file_id"] != "" for c in telegram.calls("getFile")] == [True, True]  # never the .exe
    assert sorted(p.name for p in inbox(settings).iterdir()) == ["travel.docx"]
    assert sources(limited) == ["travel.docx"]


# --- Slack ---------------------------------------------------------------------------------------------


def shared(file: dict[str, Any], *, user: str, text: str = "") -> dict[str, Any]:
    """A direct message sharing ``file`` with the bot."""
    ts = next_ts()
    return {"type": "message", "subtype": "file_share", "channel": "D0ADMIN", "channel_type": "im", "user": user,
            "text": text, "ts": ts, "event_ts": ts, "files": [file], "upload": False}


def in_thread(event: dict[str, Any]) -> Any:
    return lambda args: args.get("thread_ts") == event["ts"]


def test_slack_admin_shares_a_docx_and_the_next_question_cites_it(
    start_bot, slack: SlackEmulator, pipeline, policy_docx, settings
) -> None:
    bot = start_bot(PipelineResponder(pipeline), slack_admins=[ADMIN_SLACK])
    event = shared(slack.share_file("travel.docx", policy_docx, filetype="docx"), user=ADMIN_SLACK)
    bot.event(event)
    [summary] = slack.wait_for("chat.postMessage", where=in_thread(event))
    assert summary["channel"] == "D0ADMIN" and summary["text"].startswith("Indexed travel.docx (1 passage)")
    assert [c.ok for c in slack.calls("files.download")] == [True]  # with the bot token
    assert (inbox(settings) / "travel.docx").read_bytes() == policy_docx

    question = mention(QUESTION, channel="C0GENERAL", user=OTHER_SLACK)
    bot.event(question)
    [answer] = slack.wait_for("chat.postMessage", where=in_thread(question))
    cited = [e["text"] for b in answer["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert "30 days" in texts(answer["blocks"]) and any("Travel policy" in c for c in cited), cited


def test_slack_refuses_files_of_others_and_files_the_index_skips(
    start_bot, slack: SlackEmulator, settings, strict, policy_pdf, expanding_docx
) -> None:
    limited = Pipeline(strict)
    bot = start_bot(PipelineResponder(limited), slack_admins=[ADMIN_SLACK])
    other = shared(slack.share_file("travel.pdf", policy_pdf, filetype="pdf"), user=OTHER_SLACK)
    bot.event(other)
    [refused] = slack.wait_for("chat.postEphemeral")
    assert refused["user"] == OTHER_SLACK and refused["text"] == UPLOAD_REFUSED
    in_channel = {**mention("", channel="C0GENERAL", user=OTHER_SLACK),
                  "files": [slack.share_file("travel.pdf", policy_pdf, filetype="pdf")]}
    bot.event(in_channel)
    assert slack.wait_for("chat.postEphemeral", 2)[1]["thread_ts"] == in_channel["ts"]

    zipped = shared(slack.share_file("docs.zip", b"PK\x03\x04" * 50, filetype="zip"), user=ADMIN_SLACK)
    bot.event(zipped)
    [unsupported] = slack.wait_for("chat.postMessage", where=in_thread(zipped))
    assert unsupported["text"] == "Not indexed: docs.zip: unsupported type .zip. Nothing was added."
    assert not slack.calls("files.download")  # nothing fetched for others, nor for a type never indexed

    expanding = shared(slack.share_file("expanding.docx", expanding_docx, filetype="docx"), user=ADMIN_SLACK)
    bot.event(expanding)
    [skipped] = slack.wait_for("chat.postMessage", where=in_thread(expanding))
    assert skipped["text"].startswith("Not indexed: expanding.docx: it expands to ")
    assert not any(inbox(settings).iterdir()) and limited.sources() == []


def test_slack_file_download_needs_the_bot_token(slack: SlackEmulator, policy_pdf) -> None:
    file = slack.share_file("travel.pdf", policy_pdf, filetype="pdf")
    assert slack_helpdesk.download(file["url_private_download"], slack.bot_token, 10**6) == policy_pdf
    with pytest.raises(ValueError, match="files:read"):
        slack_helpdesk.download(file["url_private_download"], "xoxb-another-workspace", 10**6)
    assert len(slack_helpdesk.download(file["url_private_download"], slack.bot_token, 100)) == 101  # stops there
    assert [c.ok for c in slack.calls("files.download")] == [True, False, True]


def test_posted_documents_are_indexed_again_when_a_bot_starts_on_a_rebuilt_index(
    bot_settings, pipeline, policy_docx, settings
) -> None:
    inbox(settings).mkdir(parents=True)
    (inbox(settings) / "travel.docx").write_bytes(policy_docx)  # posted before the index was rebuilt
    assert "travel.docx" not in sources(pipeline)
    core = build_core(bot_settings.model_copy(update={"slack_admins": [ADMIN_SLACK]}), pipeline=pipeline)
    try:
        assert "travel.docx" in {c.passage.source for c in pipeline.ask(QUESTION).citations}
    finally:
        core.feedback.close()
