"""The benchmark suite of BENCHMARKS.md, in one command.

    .venv/bin/python -m bench                    # quick profile: about a minute
    .venv/bin/python -m bench --profile full     # 3 repetitions after a warm-up; longer
    .venv/bin/python -m bench --no-record        # print the table, leave bench/RESULTS.md alone
    .venv/bin/python -m bench --output FILE      # record somewhere else

It starts the real service (``scripted`` provider) and the baselines B0, B1, B2 and N0, in
memory and with a redis-server of its own, prints every target T1-T12 with its measured
value, baseline, ratio and verdict, and records the run in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
from pathlib import Path

from .record import RESULTS, document, machine, write
from .servers import pin_self
from .suite import PROFILES, run
from .targets import baseline_rows, misses, rows, text_table


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to record the run")
    parser.add_argument("--no-record", action="store_true", help="print only")
    return parser.parse_args(argv)


def _raise_open_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if shutil.which("redis-server") is None:
        print("the benchmark needs redis-server (Debian: apt-get install redis-server)")
        return 2
    _raise_open_file_limit()  # servers inherit it: idle streams need many sockets
    pin_self()
    host = machine()
    results = run(PROFILES[args.profile])
    table = rows(results)
    print()
    print(text_table(table))
    print()
    for name, value in baseline_rows(results):
        print(f"{name:<36} {value}")
    print(f"load generator: at most {results.generator_share:.0%} of its core in any cell")
    for line in misses(table):
        print(f"missed: {line}")
    if not args.no_record:
        command = "python -m bench" + (f" --profile {args.profile}" * (args.profile != "quick"))
        write(args.output, document(results, table, host, command))
        print(f"recorded in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
