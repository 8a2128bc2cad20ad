"""Recall of the minor-safety line per disguise kind and per action, and false blocks on the
allowed sets, from real worker calls (Worker.handle / Worker.handle_stream).

Run: .venv/bin/python scripts/policy_report.py [--engine fake|embedded] [--json reports/policy_report.json]

Cases: tests/data/policy_disguises.jsonl (written per kind before the lists changed),
tests/data/policy_holdout.jsonl, policy_holdout2.jsonl and policy_holdout3.jsonl (each written after the lists were
tuned to the sets before it, and measured once before any further change; see
docs/CONTENT_POLICY.md) and, for regression,
the template corpus tests/data/policy_corpus.jsonl. Adult content is
enabled, so only the minor-safety line can refuse. Generation comes from the scriptable
fake engine by default (the policy decision is what is measured; a refused request never
reaches the model) or from the embedded model with --engine embedded. The model judge is
off: the numbers are the rule layers' alone.
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
from shared.engine import Engine  # noqa: E402
from shared.settings import load_settings  # noqa: E402
from shared.store import MemoryStore  # noqa: E402

DATA = ROOT / "tests" / "data"
ACTIONS = ("chat", "chat_unrestricted", "enhance", "stream")
SETS = ("disguises", "holdout", "holdout2", "holdout3", "review2", "childsafety", "holdout4")
REFUSED = "content_policy_violation"


def payload(case: dict[str, Any], action: str) -> dict[str, Any]:
    history = case.get("history") or []
    if action == "enhance":
        said = "\n".join(t["content"] for t in history)  # every turn, a line each: all reach the model
        return {
            "action": "enhance",
            "prompt": case["text"],
            "system_prompt": case.get("system_prompt"),
            "context": {"history": said} if said else None,
        }
    return {
        "action": "chat_unrestricted" if action == "chat_unrestricted" else "chat",
        "message": case["text"],
        "system_prompt": case.get("system_prompt"),
        "conversation_history": history or None,
        "max_tokens": 8,
        "stream": action == "stream",
    }


async def outcome(worker: Worker, case: dict[str, Any], action: str) -> str:
    job = {"id": "policy-report", "input": payload(case, action)}
    if action == "stream":
        items = [item async for item in worker.handle_stream(job)]
        last = items[-1] if items else {}
        leaked = any(isinstance(i, str) or (isinstance(i, dict) and i.get("delta")) for i in items[:-1])
        code = last.get("error_code") if isinstance(last, dict) else None
        return "refused" if code == REFUSED and not leaked else "served" if code is None else code
    out = await worker.handle(job)
    return "refused" if out.get("error_code") == REFUSED else "served" if out.get("success") else out["error_code"]


def build_engine(kind: str) -> Engine:
    if kind == "embedded":
        from shared.engine.hf_engine import TransformersEngine

        engine: Engine = TransformersEngine(load_settings())
        engine.load()
        return engine
    from tests.fakes.engine import FakeEngine

    return FakeEngine(default="a short reply")


async def measure(engine: Engine) -> dict[str, Any]:
    settings = load_settings(adult_content_enabled=True, enhance_cache_size=0, policy_judge="off", stream_enabled=True)
    worker = Worker(settings, engine, MemoryStore(max_turns=settings.max_history_turns, cache_size=0))
    sets: dict[str, dict[str, Counter[str]]] = {}
    missed: list[str] = []
    for name in SETS:
        per = sets.setdefault(name, {})
        for line in (DATA / f"policy_{name}.jsonl").open(encoding="utf-8"):
            case = json.loads(line)
            row = per.setdefault(case["kind"], Counter())
            row["cases"] += 1
            for action in ACTIONS:
                result = await outcome(worker, case, action)
                row[f"{action}:{result}"] += 1
                expect = "block" if action in case.get("refused_in", ()) else case["expect"]
                if (result == "refused") != (expect == "block"):
                    since = f" (by design since: {case['refused_since']})" if "refused_since" in case else ""
                    known = case.get("known_miss") or case.get("known_false_block")
                    since += f" (known: {known})" if known else ""
                    missed.append(f"{name}/{case['kind']}/{action}: {result}: {case['text']!r}{since}")
    corpus: dict[str, Counter[str]] = {}
    for line in (DATA / "policy_corpus.jsonl").open(encoding="utf-8"):
        case = json.loads(line)
        case["history"] = [{"role": "user", "content": case["history"]}] if case.get("history") else None
        row = corpus.setdefault(case["category"], Counter())
        row["cases"] += 1
        for action in ("chat", "enhance"):
            row[f"{action}:{await outcome(worker, case, action)}"] += 1
    return {**sets, "corpus": corpus, "wrong": missed}


def print_report(result: dict[str, Any], engine: str) -> None:
    print(f"engine: {engine}; adult content enabled; judge off (rule layers only)")
    for name in SETS:
        print(f"\n{name:<16}{'cases':>6}" + "".join(f"{a:>19}" for a in ACTIONS))
        for kind, row in result[name].items():
            cells = "".join(f"{row[f'{a}:refused']:>12}/{row['cases']:<2} {_rate(row, a):>4}" for a in ACTIONS)
            print(f"{kind:<16}{row['cases']:>6}{cells}")
    print("(refused / cases and the rate; on the allowed_* rows a refusal is a false block)")
    print(f"\nregression corpus (template-generated){'':<4}" + "".join(f"{a:>12}" for a in ("chat", "enhance")))
    for cat, row in result["corpus"].items():
        print(f"{cat:<42}" + "".join(f"{row[f'{a}:refused']:>8}/{row['cases']:<3}" for a in ("chat", "enhance")))
    if result["wrong"]:
        print("\nnot as expected:\n  " + "\n  ".join(result["wrong"]))


def _rate(row: Counter[str], action: str) -> str:
    return f"{row[f'{action}:refused'] / row['cases']:.2f}" if row["cases"] else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("fake", "embedded"), default="fake")
    parser.add_argument("--json", type=Path, help="also save the numbers here (reports/ is gitignored)")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # refusals log a line each; the table is the output
    result = asyncio.run(measure(build_engine(args.engine)))
    print_report(result, args.engine)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"engine": args.engine, **result}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
