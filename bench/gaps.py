"""How well ``citebot gaps`` groups paraphrases: 50 scripted help-desk questions, and 20 held out.

    .venv/bin/python bench/gaps.py [--json]

Each question is stored in a fresh feedback store as a bot would store it (declined, answered then voted 👎,
or declined and escalated with a responder's reply kept), in groups of paraphrases written for this bench
plus unrelated one-offs. ``find_gaps`` groups them with the packaged embedder; a pair of questions put in one
group is right when the script has them in one group. Reported per set: pairwise precision and recall, purity
(each found group counted by its largest scripted group), the groups found against the scripted ones, and a
sweep of the similarity threshold (``retrieval.grouping.GROUP_SIMILARITY`` is picked on the 50, the 20 are
not looked at for it). Results also go to ``bench/results/gaps.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

from bot.feedback import FeedbackStore
from bot.gaps import find_gaps
from retrieval import Answer, RetrievalSettings, group_by_meaning
from retrieval.grouping import GROUP_SIMILARITY

# Paraphrase groups (a list of one question is a one-off); repeats are people asking the same words.
SCRIPTED: list[list[str]] = [
    ["How do I reset my VPN token?", "How do I reset my VPN token?", "My VPN token stopped working, how can I get "
     "a new one?", "Where can I renew the VPN token?", "how to reset vpn token", "I need a new token for the VPN"],
    ["How many weeks of parental leave do we get?", "What is the parental leave policy?",
     "How long is paternity leave here?", "Can I take parental leave and for how long?",
     "How long is maternity leave?"],
    ["How long do I have to submit expense receipts?", "What's the deadline for filing expenses?",
     "When must travel expenses be claimed by?", "Is there a time limit for claiming business expenses?"],
    ["How do I connect to the office printer?", "The printer on floor 2 isn't showing up, how do I add it?",
     "How to install the printer on my laptop?", "Setting up printing from a Mac"],
    ["What is the guest Wi-Fi password?", "How can visitors get on the wifi?", "Guest wireless network credentials?",
     "what's the wifi password for guests"],
    ["I forgot my email password, how do I reset it?", "How do I change my account password?",
     "Locked out of my account after too many password attempts"],
    ["Which days are public holidays this year?", "Is the office closed on Easter Monday?",
     "Holiday calendar for 2026"],
    ["Where can I download my payslip?", "How do I see my salary statement?", "I can't find my pay slip for November",
     "payslip download"],
    ["How many days a week can I work from home?", "What is the remote work policy?",
     "Am I allowed to work remotely from abroad?"],
    ["My laptop is broken, how do I get a replacement?", "How do I request a new laptop?",
     "Who do I contact when my computer dies?"],
    ["How do I book a meeting room?", "Can I reserve the large conference room for Friday?",
     "Where do I book rooms?", "Meeting room reservation system?"],
    ["What is the dress code?"], ["Is there a gym discount for employees?"],
    ["Who is the fire safety officer on floor 3?"], ["Can I bring my dog to the office?"],
    ["How do I order business cards?"], ["What's the policy on accepting gifts from suppliers?"],
    ["How do I get a parking permit?"],
]
HELD_OUT: list[list[str]] = [
    ["How do I book time on the confocal microscope?", "Where is the booking calendar for the confocal?",
     "Can I reserve the microscope for next Tuesday?"],
    ["How should I dispose of ethidium bromide gels?", "Where do EtBr gels go after use?",
     "What is the waste procedure for ethidium bromide?"],
    ["Who orders new pipette tips?", "How do I order lab consumables like tips?", "We are out of pipette tips, "
     "who do I ask?"],
    ["When is the -80 freezer defrosted?", "Is there a schedule for defrosting the minus 80?",
     "Defrosting the -80: when is it done?"],
    ["How do I get access to the cluster?", "I need an account on the HPC cluster", "How to request HPC access?"],
    ["What is the lab's data retention policy?"], ["Where is the first aid kit?"], ["Can I work in the lab alone "
     "at night?"], ["Who empties the biohazard bins?"], ["Where is the eyewash station?"],
]
RESULTS = Path(__file__).parent / "results"
THRESHOLDS = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8]


def store_questions(store: FeedbackStore, groups: list[list[str]]) -> None:
    """Record every question as a bot would: declined, voted 👎, or escalated (every third reply kept)."""
    for n, question in enumerate(q for group in groups for q in group):
        kind = n % 3
        answer = Answer(question, "An unhelpful answer." if kind == 1 else "Not found in the documents.", [], [],
                        kind == 1)
        answer_id = store.record_answer(platform="slack", conversation_id=f"C0:{n}", user_id=f"U{n}",
                                        question=question, answer=answer, chat_id="C0")
        if kind == 1:
            store.record_vote(answer_id, "slack", f"U{n}", -1)
        elif kind == 2:
            escalation = store.open_escalation(answer_id, asker_id=f"U{n}", asker_name=f"<@U{n}>", reply_chat="C0",
                                               reply_to=str(n), helpdesk_chat="C0HELP")
            assert escalation is not None
            store.posted_escalation(escalation, f"9.{n}", "")
            if n % 9 == 2:
                store.record_reply(escalation, responder_id="U0ANN", responder_name="@ann", text="Like this.",
                                   document=f"slack-{escalation}-x.md")


def scores(found: list[list[str]], scripted: list[list[str]]) -> dict[str, float]:
    """Pairwise precision and recall and purity of ``found`` groups (question texts, repeats included)."""
    label = {}
    for g, group in enumerate(scripted):
        for q in group:
            label[q] = g
    together = [(a, b) for group in found for a, b in itertools.combinations(group, 2)]
    truly = sum(len(group) * (len(group) - 1) // 2 for group in scripted)
    right = sum(label[a] == label[b] for a, b in together)
    total = sum(len(group) for group in found)
    purity = sum(max(sum(label[q] == g for q in group) for g in {label[q] for q in group}) for group in found)
    return {"precision": right / len(together) if together else 1.0, "recall": right / truly if truly else 1.0,
            "purity": purity / total, "groups_found": len(found), "groups_scripted": len(scripted)}


def by_texts(groups: list[list[int]], texts: list[str]) -> list[list[str]]:
    return [[texts[i] for i in group] for group in groups]


def run_set(name: str, scripted: list[list[str]], settings: RetrievalSettings) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = FeedbackStore(Path(tmp) / "feedback.db")
        store_questions(store, scripted)
        t0 = time.perf_counter()
        gaps = find_gaps(store, settings)
        seconds = time.perf_counter() - t0
        questions = [q.question for q in store.gap_questions()]
        store.close()
    # find_gaps folds repeats into one wording: expand each group back to its questions for scoring.
    found = [[q for q in questions if q in set(g.variants)] for g in gaps]
    assert sum(map(len, found)) == len(questions) == sum(map(len, scripted))
    sweep = {f"{t:.2f}": scores(by_texts(group_by_meaning(questions, settings, similarity=t), questions), scripted)
             for t in THRESHOLDS}
    return {"set": name, "questions": len(questions), "seconds": round(seconds, 2),
            "answered_groups": sum(g.answered for g in gaps), **scores(found, scripted), "sweep": sweep}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = RetrievalSettings(data_dir=Path(tempfile.mkdtemp()) / "data", _env_file=None)
    results = [run_set("scripted-50", SCRIPTED, settings), run_set("held-out-20", HELD_OUT, settings)]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gaps.json").write_text(json.dumps({"threshold": GROUP_SIMILARITY, "results": results}, indent=2))
    print(json.dumps(results, indent=2) if args.json else "\n".join(report(results)))


def report(results: list[dict]) -> list[str]:
    lines = []
    for r in results:
        lines.append(f"{r['set']}: {r['questions']} questions, threshold {GROUP_SIMILARITY}: precision "
                     f"{r['precision']:.3f} recall {r['recall']:.3f} purity {r['purity']:.3f}, {r['groups_found']} "
                     f"groups found of {r['groups_scripted']} scripted, {r['answered_groups']} with a kept answer, "
                     f"{r['seconds']} s")
        lines += [f"  similarity {t}: precision {s['precision']:.3f} recall {s['recall']:.3f} purity "
                  f"{s['purity']:.3f} groups {s['groups_found']}" for t, s in r["sweep"].items()]
    return lines


if __name__ == "__main__":
    main()
