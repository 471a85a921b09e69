"""The long fuzz run: every decoder's property from tests/fuzz, random, at many more examples than CI.

    python scripts/fuzz.py [--examples 100000] [--only recordio,csv] [--seed N]

Runs each target of tests/fuzz (RecordIO framer, Record decoder, CSV reader, request codecs, job-spec
parser) with Hypothesis, random (no derandomize) and without an example database, and prints per decoder
the number of cases tried, the time, and the finding if any: its shrunk input and the exception.
Exits 1 if any decoder has a finding; a runaway allocation is one (a MemoryError under --memory-gb).
Target: 100,000 cases per decoder without one.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, from a checkout

from hypothesis import HealthCheck, given, seed as fixed_seed, settings  # noqa: E402

from tests.fuzz import test_codecs, test_csv, test_jobspec, test_protobuf, test_recordio  # noqa: E402
from tests.fuzz.harness import keep_storage_outside_repo  # noqa: E402

TARGETS = {m.TARGET.name: m.TARGET for m in (test_recordio, test_protobuf, test_csv, test_codecs, test_jobspec)}


def run_target(target, examples: int, seed: int | None) -> tuple[int, float, str | None]:
    """(cases tried, seconds, the finding's report or None)."""
    tried = 0

    def counted(case):
        nonlocal tried
        tried += 1
        target.check(case)

    test = settings(max_examples=examples, database=None, deadline=None, derandomize=False,
                    suppress_health_check=list(HealthCheck), print_blob=True)(given(target.cases)(counted))
    if seed is not None:
        test = fixed_seed(seed)(test)
    start = time.perf_counter()
    try:
        test()
        finding = None
    except Exception:  # noqa: BLE001 - any failure is the finding to report
        finding = traceback.format_exc(limit=-6)
    return tried, time.perf_counter() - start, finding


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100_000, help="cases per decoder (default 100000)")
    parser.add_argument("--only", default=",".join(TARGETS), help=f"comma-separated, of: {', '.join(TARGETS)}")
    parser.add_argument("--seed", type=int, help="a fixed seed, to repeat a run")
    parser.add_argument("--memory-gb", type=float, default=16,
                        help="address-space limit: a decoder's runaway allocation is a MemoryError finding, "
                             "not the machine's OOM killer (default 16)")
    args = parser.parse_args(argv)
    limit = int(args.memory_gb * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    keep_storage_outside_repo()
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    findings = 0
    for name in names:
        tried, seconds, finding = run_target(TARGETS[name], args.examples, args.seed)
        status = "no finding" if finding is None else "FINDING"
        print(f"{name:10s} {tried:8d} cases tried in {seconds:7.1f} s: {status}", flush=True)
        if finding is not None:
            findings += 1
            print(finding, flush=True)
    print(f"{len(names)} decoder(s), {findings} with a finding")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
