"""Runs the enhancement evaluation set through the real embedded model and prints the table.

Run: .venv/bin/python scripts/enhance_eval.py   (saves reports/enhance_eval.json)
`--report` only prints the table from the saved results.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

CASES = ROOT / "tests" / "data" / "enhance_prompts.json"
RESULTS = ROOT / "reports" / "enhance_eval.json"
SYNTAX = re.compile(r"\([^()]*:[+-]?[\d.]+\)|\(\([^()]*\)\)|\[[^\[\]]*\]|<[^<>]+>|\bBREAK\b|embedding:\w+")


def syntax_pieces(prompt: str) -> list[str]:
    return SYNTAX.findall(prompt)


def evaluate(worker: Any) -> list[dict[str, Any]]:
    from shared.enhance.text import missing_words
    from shared.enhance.tokens import count_for

    cases = json.loads(CASES.read_text(encoding="utf-8"))["cases"]
    rows = []
    for i, case in enumerate(cases):
        started = time.perf_counter()
        out = asyncio.run(worker.handle({"input": {"action": "enhance", "seed": i, **case, "kind": None}}))
        final = out.get("enhanced_prompt", "")
        profile = worker.ctx.enhance.profiles.get(case["job_type"])
        used = count_for(profile.tokenizer, final).used
        rows.append(
            {
                **case,
                "success": out.get("success"),
                "enhanced_prompt": final,
                "source": out.get("enhancement_source"),
                "tokens": used,
                "limit": profile.token_limit,
                "within_budget": used <= profile.token_limit,
                "missing_words": missing_words(case["prompt"], final),
                "syntax_intact": all(p in final for p in syntax_pieces(case["prompt"])),
                "quality_score": out.get("quality_score"),
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'job_type':<17}{'kind':<12}{'src':<16}{'tok':>5}{'lim':>5}{'ok':>4}{'kept':>6}{'syn':>5}{'score':>7}{'s':>6}"
    )
    for r in rows:
        print(
            f"{r['job_type']:<17}{r['kind']:<12}{r['source'] or '-':<16}{r['tokens']:>5}{r['limit']:>5}"
            f"{'y' if r['within_budget'] else 'N':>4}{'y' if not r['missing_words'] else 'N':>6}"
            f"{'y' if r['syntax_intact'] else 'N':>5}{r['quality_score'] or 0:>7.3f}{r['seconds']:>6}"
        )
    fast = [r for r in rows if r["job_type"] == "sdxl_image_fast"]
    print(
        f"\n{len(rows)} prompts | SDXL fast within 75 CLIP tokens: {sum(r['within_budget'] for r in fast)}/{len(fast)}"
        f" | all within budget: {sum(r['within_budget'] for r in rows)}/{len(rows)}"
        f" | content words kept: {sum(not r['missing_words'] for r in rows)}/{len(rows)}"
        f" | syntax intact: {sum(r['syntax_intact'] for r in rows)}/{len(rows)}"
        f" | model used: {sum(r['source'] != 'rule_based' for r in rows)}/{len(rows)}"
    )


def main() -> None:
    if "--report" not in sys.argv:
        from handler.app import Worker, build_engine
        from shared.settings import load_settings

        settings = load_settings(enhance_cache_size=0)
        engine = build_engine(settings)
        engine.load()
        rows = evaluate(Worker(settings, engine))
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    print_table(json.loads(RESULTS.read_text(encoding="utf-8")))


if __name__ == "__main__":
    main()
