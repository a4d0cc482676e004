"""Fit the reader's weights and the answer's operating points on development questions with gold answers.

    CITEBOT_DATA_DIR=bench/results/data .venv/bin/python bench/fit_reader.py ../shared/bench/covidqa [MORE ...]

Each folder holds a BEIR dataset with ``answers.jsonl`` (COVID-QA's papers; ``bench/data/manuals``, software
manuals); their tune folds are fitted on together and the figures are reported per dataset.

Questions are split by their paper into a "tune" and a "held" fold (``answer_eval.fold``). Everything is
fitted on the tune fold only:

1. the cheap sentence model (on the features that need no embedding), labels: the sentence holds the gold
   answer (60% of its content words, as the judgement is made);
2. the sentence model over all features, fitted on the candidates of a wide embedding budget: the smallest
   that keeps the best answering sentence for 94% of the questions whose passages hold one. Both sentence
   models rank (``fit_ranking``: which of a question's candidates answers, then calibrated to a probability);
   pointwise logistic regression, fitted before 2026-12-02 17:00, read 1-3 points worse (BENCHMARKS "Reader");
3. the embedding budget kept (``embed_limit``): the smallest whose top 3 sentences hold the gold answer as
   often, within half a point, as the wide budget's (each embedded sentence costs query time);
4. the answerable model (question level), labels: 1 for each question asked of the full index, 0 for the
   same question asked of the collection that lacks its paper (``answer_eval.without_documents``), and 0 for
   an *entity-swapped* copy asked of the full index: its rarest word replaced by a rare word that no paper of
   the corpus uses, taken from another dataset's questions (SciFact's: "What is the main cause of
   osteoclastogenesis in children?"), the near-topic question about something the documents never mention,
   which in-domain COVID-QA alone cannot teach;
5. the decline threshold (the most declines of unanswerable questions with at most 10% of answerable ones
   declined) and the support threshold (the best holds-gold with the mean answer at most 66 words), replayed
   through ``answer.compose`` itself.

The models and the thresholds are written to ``retrieval/reader_weights.json``; the thresholds are to be set
as the defaults in ``retrieval/settings.py`` too (a test compares them). Sentence vectors are cached for the
run (each is needed twice).
Figures for both folds go to ``bench/results/fit_reader.json``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval import evaluate, reader
from retrieval.answer import compose, declined, is_relevant
from retrieval.answer_eval import (
    AnswerScores,
    Gold,
    fold,
    half,
    holds,
    load_answers,
    open_variants,
)
from retrieval.keyword import analyze
from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings
from retrieval.types import Passage

RESULTS = Path(__file__).parent / "results"
WEIGHTS = Path(__file__).parent.parent / "retrieval" / "reader_weights.json"
L2 = 1.0  # ridge penalty on standardised features: keeps weights finite when a feature separates perfectly
LIMITS = (8, 12, 16, 20, 24, 32, 48)
KEEP_BEST = 0.94
MAX_ANSWERABLE_DECLINED = 0.10
MAX_MEAN_WORDS = 66


def fit_logistic(x: np.ndarray, y: np.ndarray, names: tuple[str, ...]) -> dict:
    """L2-regularised logistic regression by Newton's method on standardised features."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.column_stack([(x - mean) / scale, np.ones(len(x))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], L2)
    penalty[-1] = 0.0  # no penalty on the intercept
    for _ in range(50):
        p = 1 / (1 + np.exp(-z @ w))
        gradient = z.T @ (p - y) + penalty * w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return {"features": list(names), "mean": mean.tolist(), "scale": scale.tolist(),
            "weights": w[:-1].tolist(), "bias": float(w[-1])}


def fit_ranking(groups: list[tuple[np.ndarray, np.ndarray]], names: tuple[str, ...]) -> dict:
    """Weights that rank each question's answering sentences first, calibrated to probabilities.

    ``groups`` holds each question's candidate features and labels. The ranking weights maximise, per question,
    the softmax probability of its answering sentences among its candidates (a conditional logit: what the reader
    decides is which sentence of *these* answers, so features that are the same for every candidate of a question
    carry no weight here); a one-feature logistic regression over the ranking score (Platt scaling) then turns
    it into the probability the thresholds and the answerable model read.
    """
    from scipy.optimize import minimize

    x = np.vstack([g for g, _ in groups])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    ranked = [((g - mean) / scale, y.astype(bool)) for g, y in groups if y.any() and not y.all()]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, gradient = 0.5 * L2 * w @ w, L2 * w
        for z, answers in ranked:
            s = z @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            mass = p[answers].sum()
            total -= np.log(mass)
            gradient = gradient + p @ z - (p[answers] / mass) @ z[answers]
        return total, gradient

    w = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x
    score = ((x - mean) / scale) @ w
    platt = fit_logistic(score[:, None], np.concatenate([y for _, y in groups]).astype(float), ("score",))
    a = platt["weights"][0] / platt["scale"][0]
    return {"features": list(names), "mean": mean.tolist(), "scale": scale.tolist(),
            "weights": (a * w).tolist(), "bias": platt["bias"] - a * platt["mean"][0]}


def swap_entities(questions: dict[str, str], donors: list[str], vocabulary: set[str]) -> dict[str, str]:
    """Each question with its rarest word replaced by a rare word the corpus never uses (seeded)."""
    unknown = sorted({w for w in donors if analyze(w) and analyze(w)[0] not in vocabulary and reader.rarity(w) > 5})
    rng = random.Random(0)
    out = {}
    for q, text in questions.items():
        words = analyze(text, stem=False)
        if words and unknown:
            rarest = max(words, key=reader.rarity)
            out[q] = re.sub(rf"(?i)\b{re.escape(rarest)}\b", rng.choice(unknown), text, count=1)
    return out


def donor_words(path: Path) -> list[str]:
    """The rarest word of each query in another dataset's ``queries.jsonl``."""
    words = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            found = analyze(json.loads(line)["text"], stem=False)
            if found:
                words.append(max(found, key=reader.rarity))
    return words


class _Cached:
    """The embedder with every vector kept, for a run that embeds the same sentences twice."""

    def __init__(self, embedder) -> None:
        self.embedder, self.vectors = embedder, {}

    def embed(self, texts):
        return self.embed_tokens(texts)[0]

    def embed_tokens(self, texts):
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            vectors, tokens = self.embedder.embed_tokens(missing)
            self.vectors.update(zip(missing, zip(vectors, tokens, strict=True), strict=True))
        return np.asarray([self.vectors[t][0] for t in texts]), [self.vectors[t][1] for t in texts]


def _store(models: dict) -> None:
    WEIGHTS.write_text(json.dumps(models, indent=1) + "\n", encoding="utf-8")
    reader.weights.cache_clear()
    reader._model.cache_clear()


@dataclass(frozen=True)
class Asked:
    """A question as the bot reads it: the text searched (acronyms spelled out) and the passages found."""

    text: str
    passages: list[Passage]


def ask(pipeline: Pipeline, question: str) -> Asked:
    found = pipeline.search(question, k=pipeline.settings.read_k)
    return Asked(found.question, found.passages)


def open_pipelines(folder: Path) -> tuple[evaluate.Dataset, dict[str, Gold], Pipeline, dict[int, Pipeline]]:
    data = evaluate.load_beir(folder)
    golds = {q: g for q, g in load_answers(folder).items() if q in data.queries}
    full = Pipeline(evaluate.dataset_settings(data, RetrievalSettings()))
    full.index_documents(f"beir:{data.name}", data.documents())
    return data, golds, full, open_variants(full, data, golds)


def ask_all(folder: Path, donors: list[str]) -> tuple[str, dict[str, Gold], dict[tuple[str, str], Asked], Pipeline]:
    """Every question of a dataset asked as the bot asks it: of the full index ("full"), of the index without
    its paper ("void"), and (tune questions) entity-swapped of the full index ("swap")."""
    data, golds, full, variants = open_pipelines(folder)
    asked = {}
    for q, g in golds.items():
        asked[(q, "full")] = ask(full, data.queries[q])
        asked[(q, "void")] = ask(variants[half(g.doc_id)], data.queries[q])
    vocabulary = {t for title, text in data.corpus.values() for t in analyze(f"{title} {text}")}
    tune = {q: data.queries[q] for q, g in golds.items() if fold(g.doc_id) == "tune"}
    for q, text in swap_entities(tune, donors, vocabulary).items():
        asked[(q, "swap")] = ask(full, text)
    return data.name, golds, asked, full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, nargs="+", help="folders with answers.jsonl; their tune folds are "
                        "fitted on together")
    parser.add_argument("--swap-words", type=Path, help="queries.jsonl of another dataset, for entity-swapped "
                        "questions (default: the scifact folder beside the first dataset)")
    args = parser.parse_args()
    t0 = time.time()
    RESULTS.mkdir(exist_ok=True)
    donors = donor_words(args.swap_words or args.dataset[0].parent / "scifact" / "queries.jsonl")
    golds: dict[str, Gold] = {}
    asked: dict[tuple[str, str], Asked] = {}
    source: dict[str, str] = {}  # question -> its dataset's name
    for folder in args.dataset:
        name, more_golds, more_asked, full = ask_all(folder, donors)
        golds |= more_golds
        asked |= more_asked
        source |= dict.fromkeys(more_golds, name)
    settings = full.settings
    embedder = _Cached(full.store.embedder)
    tune = [q for q, g in golds.items() if fold(g.doc_id) == "tune"]
    held = [q for q in golds if q not in set(tune)]
    swapped = [q for q, v in asked if v == "swap"]
    print(f"{len(golds)} questions: {len(tune)} tune, {len(held)} held")

    # 1. the cheap model, on every candidate of the tune questions
    per_question = {}
    for q in tune:
        a = asked[(q, "full")]
        rows = reader._rows(a.text, a.passages, reader.question_weights(a.text, a.passages))
        if rows:
            per_question[q] = (np.asarray([r.cheap for r in rows]), np.asarray([holds(r.text, golds[q]) for r in rows]))
    cheap = fit_ranking(list(per_question.values()), reader.CHEAP_FEATURES)
    model = reader._Logistic.from_dict(cheap)
    _store({"cheap": cheap})  # the cut below is this model's

    # 2. the embedding budget: the best answering sentence must survive the cheap cut
    with_answer = [q for q, (_, y) in per_question.items() if y.any()]
    kept = {}
    for limit in LIMITS:
        kept[limit] = np.mean([
            bool(per_question[q][1][np.argsort(-model(per_question[q][0]), kind="stable")[:limit]].any())
            for q in with_answer
        ])  # fmt: skip
    wide = next((n for n in LIMITS if kept[n] >= KEEP_BEST), LIMITS[-1])
    print("answering sentence kept by the cheap cut:", {n: round(float(v), 3) for n, v in kept.items()})

    def featurize(limit: int) -> dict:
        return {key: reader.features(a.text, a.passages, embedder, limit=limit) for key, a in asked.items()}

    # 2. the sentence model, on the candidates of the wide budget
    feats = featurize(wide)
    sentence = fit_ranking(
        [(feats[(q, "full")][1], np.asarray([holds(r.text, golds[q]) for r in feats[(q, "full")][0]]))
         for q in tune if feats[(q, "full")][0]],
        reader.FEATURES,
    )
    sentence_model = reader._Logistic.from_dict(sentence)

    # 3. the budget kept: as few embedded sentences as read as well as the wide budget
    def top3(limit: int, questions: list[str]) -> float:
        hits = []
        for q in questions:
            a = asked[(q, "full")]
            rows, x = reader.features(a.text, a.passages, embedder, limit=limit)
            y = [holds(r.text, golds[q]) for r in rows]
            order = np.argsort(-sentence_model(x), kind="stable")[:3] if rows else []
            hits.append(any(y[i] for i in order))
        return float(np.mean(hits))

    budgets = [n for n in LIMITS if n <= wide]
    read_as_well = {n: {"tune": top3(n, tune), "held": top3(n, held)} for n in budgets}
    embed_limit = next(n for n in budgets if read_as_well[n]["tune"] >= read_as_well[wide]["tune"] - 0.005)
    print("top 3 holds gold by embedding budget:", read_as_well, "kept:", embed_limit)
    if embed_limit != wide:
        feats = featurize(embed_limit)  # the answerable model sees what the reader will see
    _store({"cheap": cheap, "embed_limit": embed_limit, "sentence": sentence})

    with (RESULTS / "reader-features.pkl").open("wb") as fh:  # for trying other models offline
        labels = {q: [holds(r.text, golds[q]) for r in feats[(q, "full")][0]] for q in golds}
        pickle.dump({"x": {k: v[1] for k, v in feats.items()}, "labels": labels,
                     "fold": {q: fold(g.doc_id) for q, g in golds.items()}}, fh)

    # 4. the answerable model
    def question_row(q: str, variant: str) -> np.ndarray:
        rows, x = feats[(q, variant)]
        a = asked[(q, variant)]
        probability = sentence_model(x) if rows else np.zeros(0)
        return reader.question_features(a.text, a.passages, rows, x, probability)

    variants = [(q, v) for q in tune for v in ("full", "void")] + [(q, "swap") for q in swapped]
    with (RESULTS / "reader-questions.pkl").open("wb") as fh:  # the answerable model's rows, both folds
        pickle.dump({key: question_row(*key) for key in asked}, fh)
    qx = [question_row(q, v) for q, v in variants]
    qy = [1.0 if v == "full" else 0.0 for _, v in variants]
    answerable = fit_logistic(np.asarray(qx), np.asarray(qy), reader.ANSWERABLE_FEATURES)
    fitted_on = f"tune folds of {' + '.join(dict.fromkeys(source.values()))}, {len(tune)} questions"
    models = {"cheap": cheap, "embed_limit": embed_limit, "sentence": sentence, "answerable": answerable,
              "fitted_on": fitted_on, "date": time.strftime("%Y-%m-%d")}
    _store(models)

    # 5. operating points, replayed through the real reader and composer
    readings = {key: reader.read(a.text, a.passages, embedder) for key, a in asked.items()}

    def evaluate_at(decline: float, support: float, questions: list[str]) -> dict:
        s = settings.model_copy(update={"min_answer_probability": decline, "min_support_probability": support})
        scores = AnswerScores()
        for q in questions:
            for variant in ("full", "void"):
                a = asked[(q, variant)]
                answer = (compose(a.text, a.passages, readings[(q, variant)], s) if is_relevant(a.passages, s)
                          else declined(a.text, a.passages))
                scores.add(golds[q], answer, answerable=variant == "full")
        return scores.summary()

    curve = []
    for decline in np.round(np.arange(0.02, 0.96, 0.01), 2):
        row = evaluate_at(float(decline), 1.0, tune)
        curve.append({"threshold": float(decline), "declined_answerable": row["declined_answerable"],
                      "declined_unanswerable": row["declined_unanswerable"]})
    ok = [c for c in curve if c["declined_answerable"] <= MAX_ANSWERABLE_DECLINED] or curve[:1]
    decline = max(ok, key=lambda c: (c["declined_unanswerable"], -c["threshold"]))["threshold"]
    shapes = []
    for support in np.round(np.arange(0.0, 0.51, 0.01), 2):
        row = evaluate_at(decline, float(support), tune)
        shapes.append({"support": float(support), **row})
    fits = [s for s in shapes if s["mean_words"] <= MAX_MEAN_WORDS] or shapes[-1:]
    support = max(fits, key=lambda s: (s["holds_gold"], s["support"]))["support"]
    swap_declined = np.mean([
        readings[(q, "swap")].answerable < decline or not is_relevant(asked[(q, "swap")].passages, settings)
        for q in swapped
    ])  # fmt: skip
    # Recorded beside the models they belong to; tests hold the settings' defaults to them.
    _store({**models, "min_answer_probability": decline, "min_support_probability": support})
    by_dataset = {
        name: {part: evaluate_at(decline, support, [q for q in qs if source[q] == name])
               for part, qs in (("tune", tune), ("held", held))}
        for name in dict.fromkeys(source.values())
    }
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
        "embed_limit": embed_limit, "kept_by_cheap_cut": {str(k): v for k, v in kept.items()},
        "top3_by_budget": {str(k): v for k, v in read_as_well.items()},
        "min_answer_probability": decline, "min_support_probability": support,
        "decline_curve_tune": curve, "support_curve_tune": shapes,
        "tune": evaluate_at(decline, support, tune), "held": evaluate_at(decline, support, held),
        "by_dataset": by_dataset,
        "entity_swapped_declined_tune": float(swap_declined),
        "seconds": round(time.time() - t0),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fit_reader.json").write_text(json.dumps(report, indent=1, default=float) + "\n", encoding="utf-8")
    shown = ("embed_limit", "min_answer_probability", "min_support_probability", "by_dataset",
             "entity_swapped_declined_tune")
    print(json.dumps({k: report[k] for k in shown}, indent=1, default=float))


if __name__ == "__main__":
    main()
