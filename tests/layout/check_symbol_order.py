#!/usr/bin/env python3
"""Checks that agent/symbol-order.txt still names the agent's functions.

lld lays the agent's code out in the order agent/symbol-order.txt gives (DINODIA_CODE_LAYOUT,
docs/building.md#code-layout). The list holds mangled names; a function that was renamed, moved
to another namespace or given other parameters since the list was written no longer matches,
and lld skips it without a word (--no-warn-symbol-ordering), so the code it names lands at the
default spot and idle RSS creeps back up. This check makes that drift fail the test suite.

What is counted: the list's names of this project's own code (mangled names that mention the
`dinodia` namespace, including Boost/std templates instantiated with its types and lambdas).
Only those go stale when our code changes. The rest (Boost, libstdc++, and the C functions of
OpenSSL and SQLite, which only a statically linked build contains) depend on the build's
configuration, not on our renames.

The list comes from the Release, statically linked build (scripts/update-symbol-order.sh); the
test suite runs the RelWithDebInfo build, where GCC inlines a little differently, so about one
project name in ten is missing there even from a fresh list (11 % of the hot part and 6 % of
the tail at the time of writing). The thresholds leave a margin above that:

  hot path (project names among the first HOT_LINES lines, the hottest): at least HOT_SHARE
  tail (the project names after them):                                   at least TAIL_SHARE

The hot path is held more tightly (a margin of about 8 names against about 95 in the tail):
each hot function out of place can add a 64 KiB fault-around window to the idle bridge's RSS,
and its headroom under the 8 MB target is about 2 MiB; the tail is start-up and sync code
that runs rarely.

Exit status: 0 pass, 1 fail, 77 skipped (CTest's SKIP_RETURN_CODE), 2 usage error.
"""
import argparse
import os
import shutil
import subprocess
import sys

HOT_LINES = 500
HOT_SHARE = 0.85
TAIL_SHARE = 0.80
# Fewer project names than this in the hot part means the list itself is wrong (empty, or
# written from another program), not drifted. The list starts with the part of the bridge's code
# a settled home runs (scripts/update-symbol-order.sh), mostly Asio, Beast and JSON
# instantiations: about 45 of its first 500 names are the project's own.
MIN_HOT_NAMES = 30
SHOW_MISSING = 8
FIX = "./scripts/update-symbol-order.sh (then commit agent/symbol-order.txt)"


def project_name(name):
    return "7dinodia" in name


def defined_symbols(nm, binary):
    result = subprocess.run([nm, "--defined-only", binary], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{nm} {binary} failed: {result.stderr.strip()}")
    names = set()
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3:
            names.add(fields[2])
    return names


def share(found, total):
    return found / total if total else 1.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, help="the linked dinodia-hub-agent")
    parser.add_argument("--order", required=True, help="agent/symbol-order.txt")
    parser.add_argument("--nm", default="", help="nm or llvm-nm (default: the first on PATH)")
    parser.add_argument("--skip", default="", help="skip with this reason (exit 77)")
    args = parser.parse_args()

    if args.skip:
        print(f"SKIPPED: {args.skip}")
        return 77
    nm = args.nm if args.nm and os.path.exists(args.nm) else (
        shutil.which("nm") or shutil.which("llvm-nm"))
    if not nm:
        print("SKIPPED: neither nm nor llvm-nm is installed")
        return 77

    with open(args.order, encoding="utf-8") as f:
        listed = [line.strip() for line in f if line.strip()]
    have = defined_symbols(nm, args.binary)

    hot = [n for n in listed[:HOT_LINES] if project_name(n)]
    tail = [n for n in listed[HOT_LINES:] if project_name(n)]
    hot_missing = [n for n in hot if n not in have]
    tail_missing = [n for n in tail if n not in have]
    hot_share = share(len(hot) - len(hot_missing), len(hot))
    tail_share = share(len(tail) - len(tail_missing), len(tail))
    all_found = sum(1 for n in listed if n in have)

    print(f"{args.order}: {len(listed)} names, {all_found} in this binary "
          f"({share(all_found, len(listed)):.1%}, all kinds; informational)")
    print(f"  hot path (project names in the first {HOT_LINES} lines): "
          f"{len(hot) - len(hot_missing)} of {len(hot)} = {hot_share:.1%} "
          f"(at least {HOT_SHARE:.0%} required)")
    print(f"  tail (project names after them): {len(tail) - len(tail_missing)} of {len(tail)} = "
          f"{tail_share:.1%} (at least {TAIL_SHARE:.0%} required)")

    problems = []
    if len(hot) < MIN_HOT_NAMES:
        problems.append(f"only {len(hot)} project names in the first {HOT_LINES} lines: "
                        "the list does not look like this agent's")
    if hot_share < HOT_SHARE:
        problems.append(f"hot path share {hot_share:.1%} is below {HOT_SHARE:.0%}")
    if tail_share < TAIL_SHARE:
        problems.append(f"tail share {tail_share:.1%} is below {TAIL_SHARE:.0%}")
    missing = hot_missing + tail_missing
    if missing:
        print(f"  first missing names, hottest first ({len(missing)} in all):")
        for name in missing[:SHOW_MISSING]:
            print(f"    {name}")
    if problems:
        for p in problems:
            print(f"FAIL: {p}")
        print("The code layout list no longer matches the code: functions it names were renamed "
              "or removed, and lld places them at the default spot. Regenerate it with")
        print(f"  {FIX}")
        return 1
    print(f"PASS (when functions on the hot path change, regenerate the list: {FIX})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
