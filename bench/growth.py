"""Growth: pages flat from 10 k to 1 M orders, issuing time linear in the orders, and throughput with 1, 2
and 4 worker processes.

Runs the other benchmarks as they are and prints their summary lines:

1. ``bench/lists.py --sizes 10000,100000,1000000``: every page at each size of the big account;
2. ``bench/issuance.py`` (LibreDTE answering in 300 ms) with 1, 2 and 4 worker processes of
   ``ingest,emit:threads:64``, 1,000 orders each, side effects skipped;
3. ``bench/issuance.py`` with the default two processes for 500, 1,000 and 2,000 orders: the time to
   issue them should grow in proportion.

Run: ``python bench/growth.py [--skip-lists]`` (about 20 minutes).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402

WORKER = "ingest,emit:threads:64"


def run(args: list[str], keep: re.Pattern) -> list[str]:
    print(f"\n$ python {' '.join(args)}", flush=True)
    out = subprocess.run([harness.PYTHON, *args], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    lines = [line for line in out.stdout.splitlines() if keep.search(line)]
    for line in lines:
        print(line, flush=True)
    if out.returncode != 0:
        print(out.stdout[-3000:], out.stderr[-3000:], sep="\n")
        raise SystemExit(f"{args[0]} failed ({out.returncode})")
    return lines


def issued_rate(lines: list[str]) -> tuple[float, float]:
    for line in lines:
        m = re.search(r"issued in ([\d.]+) s .*?: ([\d.]+) documents/s", line)
        if m:
            return float(m.group(1)), float(m.group(2))
    raise SystemExit("no rate in the issuance output")


def main() -> None:
    if "--skip-lists" not in sys.argv:
        run(["bench/lists.py", "--sizes", "10000,100000,1000000"], re.compile(r"p50|orders in|pages under"))
    rates = {}
    issuance_lines = re.compile(r"issued in|CPU ms per document|machine CPU used|checked|workers:")
    for processes in (1, 2, 4):
        workers = [arg for _ in range(processes) for arg in ("--worker", WORKER)]
        lines = run(["bench/issuance.py", "--orders", "1000", "--skip-side-effects", *workers], issuance_lines)
        rates[processes] = issued_rate(lines)[1]
    totals = {}
    for orders in (500, 1000, 2000):
        lines = run(["bench/issuance.py", "--orders", str(orders), "--skip-side-effects"], issuance_lines)
        totals[orders] = issued_rate(lines)[0]
    print("\nthroughput by worker processes: " + ", ".join(f"{n}: {r:.1f}/s" for n, r in rates.items()))
    print("time to issue by orders (2 processes): " + ", ".join(f"{n}: {s:.1f} s ({s / n * 1000:.1f} ms each)"
                                                              for n, s in totals.items()))


if __name__ == "__main__":
    main()
