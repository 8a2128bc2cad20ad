"""Prints precision and recall of the minor-safety block per corpus category.

Run: .venv/bin/python scripts/policy_report.py
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from shared.policy import ContentPolicy

CORPUS = Path(__file__).parents[1] / "tests" / "data" / "policy_corpus.jsonl"


def main() -> None:
    policy = ContentPolicy(adult_enabled=True)
    per: dict[str, Counter[str]] = {}
    for line in CORPUS.open(encoding="utf-8"):
        case = json.loads(line)
        blocked = policy.assess([case["text"], case.get("history", "")]).blocked
        should = case["category"] == "must_block"
        outcome = ("tp" if blocked else "fn") if should else ("fp" if blocked else "tn")
        per.setdefault(case["category"], Counter())[outcome] += 1
        per.setdefault("ALL", Counter())[outcome] += 1
    print(f"{'category':<18}{'cases':>7}{'blocked':>9}{'precision':>11}{'recall':>8}")
    for cat, c in sorted(per.items(), key=lambda item: item[0] == "ALL"):  # the total last
        blocked = c["tp"] + c["fp"]
        precision = c["tp"] / blocked if blocked else 1.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else float("nan")
        print(f"{cat:<18}{sum(c.values()):>7}{blocked:>9}{precision:>11.3f}{recall:>8.3f}")


if __name__ == "__main__":
    main()
