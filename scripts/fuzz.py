"""A long fuzzing run of symcost's expression parser and YAML loader: the properties of tests/test_fuzz.py,
for as many random examples as asked (CI runs a few dozen, derandomized).

    PYTHONPATH=$PWD python scripts/fuzz.py --examples 100000

runs 100,000 expressions and 100,000 YAML documents (random seeds, no deadline) and prints, for each, how many
examples ran, how long it took, and the result: ``ok`` or the first failing example, shrunk by Hypothesis.
Exit status 1 if any property failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from tests.test_fuzz import check_expression, check_yaml, expression_texts, yaml_texts  # noqa: E402


def run(name: str, strategy, check, examples: int) -> bool:
    count = 0
    started = time.perf_counter()

    @settings(max_examples=examples, deadline=None, derandomize=False, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])  # fmt: skip
    @given(strategy)
    def prop(value):
        nonlocal count
        count += 1
        check(value)
        if count % 10_000 == 0:
            print(f"{name}: {count:,} examples so far, {time.perf_counter() - started:,.0f} s, all passed", flush=True)

    try:
        prop()
        result = "ok"
    except Exception as exc:  # noqa: BLE001 - report the shrunk failure, and what failed inside it
        inner = "; ".join(f"{type(e).__name__}: {e}" for e in getattr(exc, "exceptions", ()))
        result = f"FAILED: {type(exc).__name__}: {exc}" + (f" [{inner}]" if inner else "")
    print(f"{name}: {count:,} examples in {time.perf_counter() - started:,.0f} s: {result}", flush=True)
    return result == "ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000, help="examples per property (default 100,000)")
    parser.add_argument("--only", choices=["expressions", "yaml"], help="run one property only")
    args = parser.parse_args()
    ok = True
    if args.only in (None, "expressions"):
        ok &= run("expression parser", expression_texts, check_expression, args.examples)
    if args.only in (None, "yaml"):
        ok &= run("YAML loader", yaml_texts(), check_yaml, args.examples)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
