#!/usr/bin/env python3
"""Per-category table of an Autobahn/kosoku report (index.json).

usage: summary.py INDEX_JSON TITLE [--require CATS]

Prints one row per top-level case category (1..13) with the count of each
verdict. With --require "1,2,3", exits 1 unless every case in those
categories is OK, NON-STRICT or INFORMATIONAL (the pass rule of
docs/conformance.md); other categories are reported but not judged.
"""
import json
import sys
from collections import Counter, defaultdict

PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}
VERDICTS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "ERROR"]


def main() -> int:
    args = sys.argv[1:]
    require = set()
    if "--require" in args:
        i = args.index("--require")
        require = {c.strip() for c in args[i + 1].split(",") if c.strip()}
        del args[i : i + 2]
    path, title = args[0], args[1]
    with open(path) as f:
        index = json.load(f)
    by_cat = defaultdict(Counter)
    bad = []
    for agent_cases in index.values():
        for case, r in agent_cases.items():
            cat = case.split(".")[0]
            verdict = r.get("behavior", "ERROR")
            close = r.get("behaviorClose", "")
            # A failed closing handshake fails the case, as in Autobahn.
            if close in ("FAILED", "UNCLEAN", "WRONG CODE", "FAILED BY CLIENT") and verdict in PASSING:
                verdict = "FAILED"
            by_cat[cat][verdict] += 1
            if cat in require and verdict not in PASSING:
                bad.append(f"{case}: {r.get('behavior')} / close {close}")
    print(f"\n{title}")
    print(f"{'category':>8} {'cases':>6} " + " ".join(f"{v:>13}" for v in VERDICTS))
    total = Counter()
    for cat in sorted(by_cat, key=int):
        c = by_cat[cat]
        total.update(c)
        n = sum(c.values())
        print(f"{cat:>8} {n:>6} " + " ".join(f"{c.get(v, 0):>13}" for v in VERDICTS))
    n = sum(total.values())
    print(f"{'all':>8} {n:>6} " + " ".join(f"{total.get(v, 0):>13}" for v in VERDICTS))
    if bad:
        print(f"\nnot passing in required categories ({len(bad)}):")
        for b in bad:
            print("  " + b)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
