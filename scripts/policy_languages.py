"""Recall of the minor-safety line per kind and per language on one case set, from real worker
calls (the same calls as scripts/policy_report.py: chat, chat_unrestricted, enhance, stream).

Run: .venv/bin/python scripts/policy_languages.py [--set holdout4]

Cases carry a `lang` (ISO 639-1) beside their `kind`; adult content is enabled and the judge is
off, so the numbers are the rule layers' alone (docs/CONTENT_POLICY.md, "Languages and age forms").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from handler.app import Worker  # noqa: E402
from scripts.policy_report import ACTIONS, DATA, build_engine, outcome  # noqa: E402
from shared.settings import load_settings  # noqa: E402
from shared.store import MemoryStore  # noqa: E402


async def measure(name: str) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]], list[str]]:
    settings = load_settings(adult_content_enabled=True, enhance_cache_size=0, policy_judge="off", stream_enabled=True)
    worker = Worker(settings, build_engine("fake"), MemoryStore(max_turns=settings.max_history_turns, cache_size=0))
    kinds: dict[str, Counter[str]] = {}
    langs: dict[str, Counter[str]] = {}
    wrong: list[str] = []
    for line in (DATA / f"policy_{name}.jsonl").open(encoding="utf-8"):
        case = json.loads(line)
        group = "block" if case["expect"] == "block" else "allow"
        for row in (kinds.setdefault(case["kind"], Counter()), langs.setdefault(f"{case['lang']}:{group}", Counter())):
            row["cases"] += 1
        results = {action: await outcome(worker, case, action) for action in ACTIONS}
        for action, result in results.items():
            for row in (kinds[case["kind"]], langs[f"{case['lang']}:{group}"]):
                row[f"{action}:{result}"] += 1
            if (result == "refused") != (case["expect"] == "block"):
                wrong.append(f"{case['kind']}/{case['lang']}/{action}: {result}: {case['text']!r}")
    return kinds, langs, wrong


def show(title: str, rows: dict[str, Counter[str]]) -> None:
    print(f"\n{title:<22}{'cases':>6}" + "".join(f"{a:>19}" for a in ACTIONS))
    for key, row in sorted(rows.items()):
        print(f"{key:<22}{row['cases']:>6}" + "".join(f"{row[f'{a}:refused']:>15}/{row['cases']:<3}" for a in ACTIONS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="holdout4")
    parser.add_argument("--json", type=Path, help="also save the numbers here (reports/ is gitignored)")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    kinds, langs, wrong = asyncio.run(measure(args.set))
    print(f"set: {args.set}; adult content enabled; judge off; refused/cases (allowed rows: false blocks)")
    show("kind", kinds)
    show("language:expect", langs)
    # A case is counted once per action; the table above gives each action's count.
    wrong_chat = [w for w in wrong if "/chat:" in w]
    print(f"\nnot as expected ({len(wrong)} over all actions; chat: {len(wrong_chat)}):\n  " + "\n  ".join(wrong))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out: dict[str, Any] = {"kinds": kinds, "langs": langs, "wrong": wrong}
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
