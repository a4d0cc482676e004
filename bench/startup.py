"""Start-up cost of the command line: whole processes, timed side by side with bare Python and chromadb.

    .venv/bin/python bench/startup.py [--rounds 10] [--citebot .venv/bin/citebot] [--baseline OTHER_CITEBOT]

Each round runs, in an order rotating per round, ``python -c pass``, ``python -c "import chromadb"``,
``citebot --help`` and a one-shot ``citebot ask`` on the seeds (indexed once, first, into a temporary data
dir), so the machine's load hits all of them alike. It prints the median wall seconds of each and their
ratios to ``import chromadb`` and to ``python -c pass``. ``--baseline`` adds another checkout's command (e.g.
a worktree of an older commit) to the same rotation, its ``--help`` and ``ask`` timed in the same rounds.
Results go to ``bench/results/startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What are the therapeutic targets in the TME?"
TARGETS = {"citebot --help": 0.25, "citebot ask": 2.0}  # at most, as ratios to `import chromadb`


def _seconds(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--citebot", type=Path, default=Path(sys.executable).with_name("citebot"))
    parser.add_argument("--baseline", type=Path, help="another citebot command to time in the same rounds")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "CITEBOT_DATA_DIR": data}
        indexer = Path(sys.executable).with_name("citebot")  # this checkout's: `--citebot` may predate `-q`
        subprocess.run([str(indexer), "index", "-q", str(ROOT / "seeds")], env=env, check=True, timeout=600)
        commands = {
            "python -c pass": [python, "-c", "pass"],
            "import chromadb": [python, "-c", "import chromadb"],
            "citebot --help": [str(args.citebot), "--help"],
            "citebot ask": [str(args.citebot), "ask", QUESTION],
        }
        if args.baseline:
            commands |= {"baseline --help": [str(args.baseline), "--help"],
                         "baseline ask": [str(args.baseline), "ask", QUESTION]}
        times: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for _ in range(2):  # warm the file cache
            for name in names:
                _seconds(commands[name], env)
        for round_ in range(args.rounds):
            for name in names[round_ % len(names):] + names[: round_ % len(names)]:
                times[name].append(_seconds(commands[name], env))
    median = {name: statistics.median(values) for name, values in times.items()}
    report = {
        "rounds": args.rounds,
        "citebot": str(args.citebot),
        "baseline": str(args.baseline or ""),
        "median_s": median,
        "vs_import_chromadb": {n: median[n] / median["import chromadb"] for n in median},
        "vs_python": {n: median[n] / median["python -c pass"] for n in median},
        "targets_vs_import_chromadb": TARGETS,
        "load": os.getloadavg(),
    }
    out = ROOT / "bench" / "results" / "startup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"{'command':<18}{'median s':>10}{'x chromadb':>12}{'x python':>10}")
    for name in median:
        print(f"{name:<18}{median[name]:>10.3f}{report['vs_import_chromadb'][name]:>12.2f}"
              f"{report['vs_python'][name]:>10.2f}")
    for name, bound in TARGETS.items():
        ratio = report["vs_import_chromadb"][name]
        print(f"{name}: {ratio:.2f}x import chromadb (target <= {bound}x): {'met' if ratio <= bound else 'NOT met'}")


if __name__ == "__main__":
    main()
