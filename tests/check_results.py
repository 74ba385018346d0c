#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judge a test-VM run: KUnit KTAP from the kernel log, the integration results, and splats.

usage: check_results.py OUTDIR [--extra NAME=PASSED/FAILED ...]

Prints every failure with its diagnostics, every kernel splat with context, and ends with
the line `N passed, N failed`. Exits 1 if anything failed, a splat was found, or a part of
the run is missing (no KTAP, no integration results, no kmemleak report).
"""

import re
import sys
from pathlib import Path

# Kernel log lines that mean something went wrong in the kernel, whatever the tests said.
SPLAT_PATTERNS = [
    (r"\bBUG: ", "BUG"),
    (r"^WARNING: |\bWARNING: CPU: \d+ PID: \d+", "WARN"),
    (r"-+\[ cut here \]-+", "WARN/BUG"),
    (r"\bKASAN: ", "KASAN"),
    (r"\bUBSAN: ", "UBSAN"),
    (r"possible circular locking dependency|possible recursive locking|"
     r"inconsistent lock state|suspicious RCU usage|"
     r"WARNING: .*lock.*(held|imbalance|corruption)|BUG: sleeping function called",
     "lockdep"),
    (r"INFO: task .* blocked for more than \d+ seconds", "hung task"),
    (r"\bOops\b|general protection fault|Kernel panic|kernel BUG at", "oops/panic"),
    (r"rcu: INFO: rcu_\w+ (self-)?detected stall|soft lockup|hard LOCKUP", "stall/lockup"),
    (r"list_add corruption|list_del corruption", "list corruption"),
    (r"rust_kernel: panicked|panicked at ", "Rust panic"),
]
SPLAT_RE = [(re.compile(p), kind) for p, kind in SPLAT_PATTERNS]
TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")
RESULT = re.compile(r"^(\s*)(ok|not ok) (\d+) (\S+)(?:\s+#\s*(\w+).*)?$")


def strip_ts(line):
    return TIMESTAMP.sub("", line.rstrip("\n"))


def parse_ktap(lines):
    """Returns (cases, suites): lists of (name, status) with status ok/fail/skip.

    Cases are results indented one level (4 spaces) under a suite; suites are top-level
    results. Lines not belonging to KTAP are ignored.
    """
    cases, suites = [], []
    in_ktap = False
    for raw in lines:
        line = strip_ts(raw)
        if line.startswith("KTAP version"):
            in_ktap = True
            continue
        if not in_ktap:
            continue
        m = RESULT.match(line)
        if not m:
            continue
        indent, res, _, name, directive = m.groups()
        status = "ok" if res == "ok" else "fail"
        if directive and directive.upper() == "SKIP":
            status = "skip"
        if len(indent) == 0:
            suites.append((name, status))
        elif len(indent) == 4:
            cases.append((name, status))
    return cases, suites


def ktap_failure_context(lines, name):
    """The log lines of the KUnit case `name` (its diagnostics precede its result)."""
    body = [strip_ts(l) for l in lines]
    for i, line in enumerate(body):
        m = RESULT.match(line)
        if m and m.group(4) == name and m.group(2) == "not ok":
            start = i
            while start > 0 and not RESULT.match(body[start - 1]) and \
                    "# Subtest" not in body[start - 1]:
                start -= 1
            return body[max(start, i - 40):i + 1]
    return []


def parse_tap(text):
    """Integration results: list of (name, status, diagnostics)."""
    results = []
    for line in text.splitlines():
        m = RESULT.match(line)
        if m and not m.group(1):
            status = "ok" if m.group(2) == "ok" else "fail"
            results.append([m.group(4), status, []])
        elif line.startswith("    ") and results:
            results[-1][2].append(line[4:])
    return [tuple(r) for r in results]


def find_splats(lines):
    """Returns [(kind, context lines)] for every splat in the kernel log."""
    body = [strip_ts(l) for l in lines]
    found = []
    last = -100
    for i, line in enumerate(body):
        for rx, kind in SPLAT_RE:
            if rx.search(line):
                if i - last > 20:  # one report per splat, not one per line of it
                    found.append((kind, body[max(0, i - 2):i + 25]))
                last = i
                break
    return found


def kmemleak_leaks(text):
    return len(re.findall(r"^unreferenced object", text, re.M))


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    out = Path(argv[1])
    extra = [a.split("=", 1) for a in argv[2:] if "=" in a]
    passed = failed = skipped = 0
    problems = []

    for name, counts in extra:
        p, f = (int(x) for x in counts.split("/"))
        passed += p
        failed += f
        print(f"{name}: {p} passed, {f} failed")

    dmesg_path = out / "dmesg.txt"
    lines = dmesg_path.read_text(errors="replace").splitlines() if dmesg_path.exists() else []
    if not lines:
        problems.append(f"no kernel log ({dmesg_path}): the VM run did not complete")

    cases, suites = parse_ktap(lines)
    if not suites:
        problems.append("no KTAP output in the kernel log: the KUnit module did not run")
    for name, status in cases:
        if status == "ok":
            passed += 1
        elif status == "skip":
            skipped += 1
        else:
            failed += 1
            print(f"FAIL kunit {name}")
            for l in ktap_failure_context(lines, name):
                print(f"    {l}")
    for name, status in suites:
        print(f"kunit suite {name}: {status}")
        if status == "fail" and not any(s == "fail" for _, s in cases):
            failed += 1  # a suite that failed outside any case (e.g. init)

    tap_path = out / "integration.tap"
    tap = parse_tap(tap_path.read_text()) if tap_path.exists() else []
    if not tap:
        problems.append(f"no integration results ({tap_path})")
    for name, status, diag in tap:
        if status == "ok":
            passed += 1
        else:
            failed += 1
            print(f"FAIL integration {name}")
            for l in diag:
                print(f"    {l}")

    for kind, ctx in find_splats(lines):
        problems.append(f"kernel splat ({kind}):\n" + "\n".join("    " + l for l in ctx))

    leak_path = out / "kmemleak.txt"
    leak_text = leak_path.read_text(errors="replace") if leak_path.exists() else None
    if leak_text is None or "not available" in leak_text:
        problems.append("no kmemleak report: kmemleak was not enabled in the VM")
    elif kmemleak_leaks(leak_text):
        problems.append(f"kmemleak: {kmemleak_leaks(leak_text)} unreferenced objects:\n" +
                        "\n".join("    " + l for l in leak_text.splitlines()[:60]))

    for p in problems:
        print(f"PROBLEM {p}")
    if problems:
        failed += len(problems)
    summary = f"{passed} passed, {failed} failed"
    if skipped:
        summary += f", {skipped} skipped"
    print(summary)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
