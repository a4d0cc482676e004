"""citebot's LLM answers from the fully local model that scripts/local-llm.sh serves.

    scripts/local-llm.sh &      # Qwen2.5-Coder-1.5B-Instruct Q4_K_M on http://127.0.0.1:8080/v1
    python bench/local_llm.py [--url http://127.0.0.1:8080/v1] [--top-k 4] [--json]

Indexes the seeds into a temporary data dir, then asks each question through the pipeline as ``citebot ask``
does (streaming, verification, fallback). Per question: prompt tokens (counted by the server's
``/extras/tokenize/count`` on the messages, so a few template tokens short), time to the first token (mostly
prompt processing), streamed tokens (llama.cpp sends one a chunk) and the time they took, and what the user
got: a verified LLM answer (with the sentences removed) or the extractive fallback and why. Prompt tokens/s =
prompt tokens / time to first token; generation tokens/s = (streamed tokens - 1) / (rest of the time). The
machine's load average is recorded alongside: on a shared machine the rates are lower bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from retrieval.pipeline import Pipeline
from retrieval.settings import RetrievalSettings

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
RESULTS = Path(__file__).parent / "results"
MODEL = "qwen2.5-coder-1.5b"
QUESTIONS = [
    "What are the therapeutic targets in the TME?",
    "How do cancer-associated fibroblasts help tumors?",
    "Which immune checkpoints are targeted?",
]


def prompt_tokens(url: str, pipeline: Pipeline, question: str) -> int:
    """Tokens of the messages the model gets for ``question`` (without the chat template's few)."""
    assert pipeline.llm is not None
    passages = pipeline.search(question).passages
    text = "\n".join(content for _, content in pipeline.llm._messages(question, passages, []))
    root = url.removesuffix("/v1")
    response = httpx.post(f"{root}/extras/tokenize/count", json={"input": text}, timeout=60, trust_env=False)
    response.raise_for_status()
    return int(response.json()["count"])


def ask(pipeline: Pipeline, question: str) -> dict[str, Any]:
    """One question as ``citebot ask`` answers it, with the stream's timings."""
    stamps: list[float] = []
    start = time.perf_counter()
    answer = pipeline.ask(question, on_sentence=lambda token: stamps.append(time.perf_counter()))
    result: dict[str, Any] = {"question": question, "mode": answer.mode, "notice": answer.notice,
                              "citations": len(answer.citations), "seconds": time.perf_counter() - start,
                              "streamed_tokens": len(stamps)}
    if stamps:
        result["first_token_s"] = stamps[0] - start
        result["generation_s"] = stamps[-1] - stamps[0]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080/v1")
    parser.add_argument("--top-k", type=int, default=4, help="passages in the prompt")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        settings = RetrievalSettings(data_dir=Path(data), openai_api_key="local", openai_base_url=args.url,
                                     llm_model=MODEL, llm_timeout=600, llm_max_retries=0, top_k=args.top_k,
                                     _env_file=None)
        pipeline = Pipeline(settings)
        pipeline.index([SEEDS])
        runs = []
        for question in QUESTIONS:
            run = ask(pipeline, question) | {"prompt_tokens": prompt_tokens(args.url, pipeline, question)}
            if "first_token_s" in run:
                run["prompt_tokens_per_s"] = run["prompt_tokens"] / run["first_token_s"]
            if run["streamed_tokens"] > 1:
                run["generation_tokens_per_s"] = (run["streamed_tokens"] - 1) / run["generation_s"]
            runs.append(run | {"load_average": os.getloadavg()[0]})
    report = {"model": MODEL, "top_k": args.top_k, "cores": os.cpu_count(), "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "local_llm.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for r in runs:
        rates = (f"{r.get('prompt_tokens_per_s', 0):.1f} prompt tok/s, "
                 f"{r.get('generation_tokens_per_s', 0):.1f} generated tok/s")
        outcome = r["notice"] or "verified"
        print(f"{r['question']}: {r['prompt_tokens']} prompt tokens, first token after "
              f"{r.get('first_token_s', 0):.1f} s, {r['streamed_tokens']} tokens; {rates}; {r['mode']}, "
              f"{r['citations']} citations ({outcome}); load {r['load_average']:.1f}")


if __name__ == "__main__":
    main()
