#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judge a test-VM run: KUnit KTAP from the kernel log, the integration results, and splats.

usage: check_results.py OUTDIR [--earlier=LISTING] [NAME=PASSED/FAILED ...]
       check_results.py --kunit OUTDIR
       check_results.py --resume STALLED_TAP

Prints every failure with its diagnostics, every kernel splat with context, and ends with
the line `N passed, N failed`. Exits 1 if anything failed, a splat was found, or a part of
the run is missing (no KTAP, a test that never reported, no kmemleak report, a run that
ended early). --earlier names a file listing, one per line, the output directories of VMs
that stalled or ended early before OUTDIR's run resumed their work: their kernel logs are
judged too.
With --kunit, judges a `make kunit` run: the KTAP and the splats only.
With --resume, prints the results of STALLED_TAP that a resumed run keeps (tests/run.sh).

The kernel log is OUTDIR/dmesg.txt (written at the end of the run) completed by kmsg.txt
(written as the log grows); when the run never ended, kmsg.txt or, failing that, the serial
console (console.log: warnings and worse only) are judged instead.
"""

import re
import sys
from pathlib import Path

# Kernel log lines that mean something went wrong in the kernel, whatever the tests said:
# (pattern, kind, expectation class). Kinds with an expectation class may be provoked on
# purpose by a test, which then says so with `mpw-expect: CLASS begin` / `... end` markers in
# the kernel log (tests/guest/lib.sh: expect_splats_begin/end); the others never may.
SPLAT_PATTERNS = [
    # A known Linux 7.3 issue, not this project's: a PF driver whose remove disables SR-IOV
    # (igb_remove -> igb_disable_sriov -> pci_disable_sriov) removes the VFs without the PCI
    # rescan/remove lock, and pci_stop_and_remove_bus_device() asserts it is held. Only a test
    # that unbinds such a PF driver on purpose may expect it. (Before the generic WARN.)
    (r"WARNING: drivers/pci/remove\.c:\d+ at pci_stop_and_remove_bus_device\b",
     "PCI removal without the rescan lock (kernel)", "pci-remove-unlocked"),
    (r"\bBUG: ", "BUG", None),
    (r"^WARNING: |\bWARNING: CPU: \d+ PID: \d+", "WARN", None),
    (r"-+\[ cut here \]-+", "WARN/BUG", None),
    (r"\bKASAN: ", "KASAN", None),
    (r"\bUBSAN: ", "UBSAN", None),
    (r"possible circular locking dependency|possible recursive locking|"
     r"inconsistent lock state|suspicious RCU usage|"
     r"WARNING: .*lock.*(held|imbalance|corruption)|BUG: sleeping function called",
     "lockdep", None),
    (r"INFO: task .* blocked for more than \d+ seconds", "hung task", None),
    (r"\bOops\b|general protection fault|Kernel panic|kernel BUG at", "oops/panic", None),
    (r"rcu: INFO: rcu_\w+ (self-)?detected stall|soft lockup|hard LOCKUP", "stall/lockup",
     None),
    (r"list_add corruption|list_del corruption", "list corruption", None),
    (r"rust_kernel: panicked|panicked at ", "Rust panic", None),
    # drivers/iommu/intel/dmar.c: dmar_fault(), dmar_fault_do_one()
    (r"\[DMA (Read|Write)( NO_PASID| PASID 0x[0-9a-f]+)?\] Request device \[|"
     r"DRHD: handling fault status reg", "IOMMU DMA fault", "dmar-fault"),
    (r"\[INTR-REMAP\] Request device \[", "IOMMU interrupt-remapping fault",
     "intr-remap-fault"),
    # drivers/pci/pcie/aer.c (pr_fmt "AER: "): aer_print_source(), aer_print_error()
    (r"\bAER: .*\b[Ee]rror messages? received\b|\bAER: .*\b(Corrected|Uncorrected|"
     r"Correctable|Uncorrectable)\b.*\b[Ee]rrors? received\b|\bAER: .*Bus Error: |"
     r"PCIe Bus Error: ", "AER report", "aer"),
    # kernel/irq/spurious.c: __report_bad_irq(), note_interrupt()
    (r"\birq \d+: nobody cared\b|Disabling IRQ #\d+", "spurious IRQ", "spurious-irq"),
    # drivers/iommu/intel/dmar.c: qi_dump_fault()
    (r"VT-d detected Invalidation (Time-out|Queue|Completion) Error|"
     r"Invalidation Time-out Error|VT-d hardware .*time-?out|\bQI\b.*[Tt]ime-?out",
     "VT-d invalidation error", "vtd-invalidation"),
]
SPLAT_RE = [(re.compile(p), kind, cls) for p, kind, cls in SPLAT_PATTERNS]
EXPECT_CLASSES = sorted({cls for _, _, cls in SPLAT_PATTERNS if cls})
EXPECT_MARK = re.compile(r"\bmpw-expect: (\S+) (begin|end)\b")
TEST_MARK = re.compile(r"\bmpw-test: (begin|end) (\S+)")
TIMESTAMP = re.compile(r"^\[\s*(\d+\.\d+)\]\s?")
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


def ktap_text(lines):
    """The KTAP part of a kernel log: from the first top-level `KTAP version` with a
    non-empty plan (the built-in KUnit prints `KTAP version 1` / `1..0` at boot: the filter
    leaves it nothing to run) to the last result."""
    body = [strip_ts(l) for l in lines]
    start = next((i for i, l in enumerate(body) if l.startswith("KTAP version") and
                  not (i + 1 < len(body) and body[i + 1].strip() == "1..0")), None)
    if start is None:
        return []
    end = max((i for i, l in enumerate(body) if i >= start and RESULT.match(l)),
              default=start)
    return body[start:end + 1]


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
    """Integration results: list of (name, status, diagnostics), status ok/fail/skip."""
    results = []
    for line in text.splitlines():
        m = RESULT.match(line)
        if m and not m.group(1):
            status = "ok" if m.group(2) == "ok" else "fail"
            if status == "ok" and (m.group(5) or "").upper() == "SKIP":
                status = "skip"
            results.append([m.group(4), status, []])
        elif line.startswith("    ") and results:
            results[-1][2].append(line[4:])
    return [tuple(r) for r in results]


def parse_expected(text):
    """The names of expected-tests.txt, in order (comments and blank lines skipped)."""
    return [l.strip() for l in text.splitlines() if l.strip() and not l.startswith("#")]


def missing_tests(expected, results):
    """Expected names with no result (a name expected twice needs two results)."""
    seen = {}
    for name, _, _ in results:
        seen[name] = seen.get(name, 0) + 1
    missing = []
    for name in expected:
        if seen.get(name, 0) > 0:
            seen[name] -= 1
        else:
            missing.append(name)
    return missing


def find_splats(lines, expected=None):
    """Returns [(kind, context lines, step)] for every splat in the kernel log; step is the
    test or harness step that was running (`mpw-test: begin NAME`), or None.

    A splat whose class a test expects (between `mpw-expect: CLASS begin` and `... end`, or
    the end of the test: `mpw-test: end NAME`) is not reported; it is counted in `expected`
    (a dict class -> count) when one is given.
    """
    body = [strip_ts(l) for l in lines]
    found = []
    last = -100
    expecting = set()
    running = None
    for i, line in enumerate(body):
        m = EXPECT_MARK.search(line)
        if m:
            if m.group(2) == "begin":
                expecting.add(m.group(1))
            else:
                expecting.discard(m.group(1))
            continue
        m = TEST_MARK.search(line)
        if m:
            expecting.clear()  # a test's expectations end with it
            running = m.group(2) if m.group(1) == "begin" else None
            last = -100  # a splat in the next step is a splat of its own
            continue
        for rx, kind, cls in SPLAT_RE:
            if rx.search(line):
                if not cls and kind == "WARN/BUG":
                    # A `cut here` line belongs to the report that follows it: expected if
                    # that one is.
                    nxt = [c for r, _, c in SPLAT_RE for l in body[i + 1:i + 4]
                           if c and r.search(l)]
                    if nxt and nxt[0] in expecting:
                        break
                if cls and cls in expecting:
                    if expected is not None:
                        expected[cls] = expected.get(cls, 0) + 1
                    break
                if i - last > 20:  # one report per splat, not one per line of it
                    found.append((kind, body[max(0, i - 2):i + 25], running))
                last = i
                break
    return found


def marker_problems(lines):
    """Expectation markers naming a class that does not exist (a typo would hide nothing)."""
    bad = sorted({m.group(1) for l in lines for m in [EXPECT_MARK.search(l)]
                  if m and m.group(1) not in EXPECT_CLASSES})
    return [f"unknown splat class in mpw-expect marker: {c} (known: "
            f"{', '.join(EXPECT_CLASSES)})" for c in bad]


def kmemleak_leaks(text):
    return len(re.findall(r"^unreferenced object", text, re.M))


def _read_lines(path):
    return path.read_text(errors="replace").splitlines() if path.exists() else []


def _ts(line):
    m = TIMESTAMP.match(line)
    return float(m.group(1)) if m else None


def read_kernel_log(out):
    """Returns (lines, problems): the most complete kernel log of the run in OUTDIR.

    dmesg.txt is the ring buffer at the end of the run; kmsg.txt was followed from boot on,
    so it also holds what the ring buffer may have overwritten, but may lag at the end: the
    log is kmsg.txt followed by the lines of dmesg.txt that are newer than its last line.
    Without dmesg.txt the run never ended: kmsg.txt, or else console.log, is judged.
    """
    dmesg = _read_lines(out / "dmesg.txt")
    kmsg = _read_lines(out / "kmsg.txt")
    if dmesg:
        last = next((t for t in map(_ts, reversed(kmsg)) if t is not None), None)
        if last is None:
            return dmesg, []
        newer, take = [], False
        for l in dmesg:
            t = _ts(l)
            if t is not None:
                take = t > last
            if take:
                newer.append(l)
        return kmsg + newer, []
    missing = f"no final kernel log ({out / 'dmesg.txt'}): the VM run did not complete"
    if kmsg:
        return kmsg, [f"{missing}; judging the kernel log saved as it was written (kmsg.txt)"]
    console = _read_lines(out / "console.log")
    if console:
        return console, [f"{missing}; judging the serial console (console.log: warnings "
                         f"and worse only, no KTAP)"]
    return [], [f"{missing}, and no kmsg.txt or console.log either"]


def run_end_problems(out):
    """Did run-tests.sh get to its end? (It writes run-tests.done last.)"""
    if (out / "run-tests.done").exists():
        return []
    stalled = out / "stalled.txt"
    if stalled.exists():
        return [f"{stalled.read_text().strip()} (scripts/vm.sh's stall watchdog); the results "
                f"after that point are missing, see {out / 'kmsg.txt'}"]
    died = out / "died.txt"
    if died.exists():
        return [f"{died.read_text().strip()}; the results after that point are missing, see "
                f"{out / 'console.log'}, {out / 'kmsg.txt'} and {out / 'qemu-log.txt'}"]
    rc_path = out / "cmd.rc"
    if rc_path.exists():
        rc = rc_path.read_text().strip()
        return [f"the guest run ended early with status {rc}: run-tests.sh stopped before "
                f"its end (see {out / 'cmd.out'}); the results after that point are missing"]
    return ["the guest run never ended (no cmd.rc): the VM timed out, hung or crashed; see "
            f"{out / 'console.log'} and {out / 'kmsg.txt'}"]


class Tally:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.problems = []

    def summary(self):
        for p in self.problems:
            print(f"PROBLEM {p}")
        failed = self.failed + len(self.problems)
        s = f"{self.passed} passed, {failed} failed"
        if self.skipped:
            s += f", {self.skipped} skipped"
        print(s)
        return 0 if failed == 0 else 1


def judge_kunit(lines, tally):
    """Counts the KUnit cases of the kernel log into tally, printing failures."""
    cases, suites = parse_ktap(lines)
    if not suites:
        tally.problems.append("no KTAP output in the kernel log: the KUnit module did not run")
    for name, status in cases:
        if status == "ok":
            tally.passed += 1
        elif status == "skip":
            tally.skipped += 1
        else:
            tally.failed += 1
            print(f"FAIL kunit {name}")
            for l in ktap_failure_context(lines, name):
                print(f"    {l}")
    for name, status in suites:
        print(f"kunit suite {name}: {status}")
        if status == "fail" and not any(s == "fail" for _, s in cases):
            tally.failed += 1  # a suite that failed outside any case (e.g. init)


def judge_splats(lines, tally):
    expected = {}
    for kind, ctx, step in find_splats(lines, expected):
        during = f" during {step}" if step else ""
        tally.problems.append(f"kernel splat ({kind}){during}:\n" +
                              "\n".join("    " + l for l in ctx))
    for cls, count in sorted(expected.items()):
        print(f"expected kernel messages ({cls}): {count} lines, inside mpw-expect markers")
    tally.problems.extend(marker_problems(lines))


def resume_tap(text):
    """The results a run resumed after a stalled VM keeps from that VM's TAP: every test's
    (`test_*`, with its diagnostics) but that of the test it stalled in, which runs again: the
    last result, when it is a time-out (the stall was seen at the end of the test's time
    limit); a stall the guest's watcher reported first left that test without a result.
    Harness steps and file problems are recorded afresh by the new VM."""
    blocks = []
    for line in text.splitlines():
        if RESULT.match(line) and not line.startswith(" "):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    if blocks and blocks[-1][0].startswith("not ok") and any(
            "timed out after" in l for l in blocks[-1][1:]):
        blocks.pop()
    keep = [b for b in blocks if RESULT.match(b[0]).group(4).startswith("test_")]
    return "".join(l + "\n" for b in keep for l in b)


def judge_earlier_runs(listing, tally):
    """The kernel logs of the VMs that stalled, or ended in the middle of the run, before this
    run resumed their work (one directory per line of LISTING, tests/run.sh): their splats
    count as this run's; their results are in this run's TAP already."""
    if not listing.exists():
        return
    for d in listing.read_text().split():
        why = " ".join(_read_lines(Path(d) / "stalled.txt") + _read_lines(Path(d) / "died.txt"))
        lines, _ = read_kernel_log(Path(d))
        if not lines:
            tally.problems.append(f"no kernel log of the earlier VM in {d}")
            continue
        print(f"WARNING the earlier VM of {d}: {why or 'stopped'}; its kernel log is judged too")
        before = len(tally.problems)
        judge_splats(lines, tally)
        # An earlier VM that got past its kmemleak report (run-tests.sh judges the tests of
        # the files not marked `# mpw-kmemleak: off` before those) has its leaks judged too.
        leaks = Path(d) / "kmemleak.txt"
        if leaks.exists() and kmemleak_leaks(leaks.read_text(errors="replace")):
            text = leaks.read_text(errors="replace")
            tally.problems.append(f"kmemleak: {kmemleak_leaks(text)} unreferenced objects:\n" +
                                  "\n".join("    " + l for l in text.splitlines()[:60]))
        for i in range(before, len(tally.problems)):
            tally.problems[i] = f"(in the earlier VM of {d}) {tally.problems[i]}"


def main_kunit(out):
    """`make kunit`: the KTAP, the KUnit results and the splats of one VM run."""
    tally = Tally()
    lines, log_problems = read_kernel_log(out)
    tally.problems.extend(log_problems)
    for l in ktap_text(lines):
        print(l)
    rc_path = out / "cmd.rc"
    rc = rc_path.read_text().strip() if rc_path.exists() else None
    if rc is None:
        tally.problems.append(f"the VM run never ended (no cmd.rc): it timed out, hung or "
                              f"crashed; see {out / 'console.log'}")
    elif rc != "0":
        tally.problems.append(f"loading or unloading the modules failed (status {rc}); see "
                              f"{out / 'cmd.out'}")
    judge_kunit(lines, tally)
    judge_splats(lines, tally)
    return tally.summary()


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    if argv[1] == "--resume" and len(argv) == 3:
        # A VM that stalled or died before its first result left no TAP: nothing to keep.
        tap = Path(argv[2])
        print(resume_tap(tap.read_text() if tap.exists() else ""), end="")
        return 0
    if argv[1] == "--kunit":
        if len(argv) != 3:
            print(__doc__)
            return 2
        return main_kunit(Path(argv[2]))
    out = Path(argv[1])
    earlier_runs = [a.split("=", 1)[1] for a in argv[2:] if a.startswith("--earlier=")]
    extra = [a.split("=", 1) for a in argv[2:] if "=" in a and not a.startswith("--")]
    tally = Tally()

    for name, counts in extra:
        p, f = (int(x) for x in counts.split("/"))
        tally.passed += p
        tally.failed += f
        print(f"{name}: {p} passed, {f} failed")

    lines, log_problems = read_kernel_log(out)
    tally.problems.extend(log_problems)
    earlier = out / "earlier-stall.txt"
    if earlier.exists():
        print(f"WARNING {earlier.read_text().strip()} (these results are the fresh VM's)")
    ended = run_end_problems(out)
    tally.problems.extend(ended)

    judge_kunit(lines, tally)

    tap_path = out / "integration.tap"
    tap = parse_tap(tap_path.read_text()) if tap_path.exists() else []
    exp_path = out / "expected-tests.txt"
    expected = parse_expected(exp_path.read_text()) if exp_path.exists() else None
    if not tap and not expected:
        tally.problems.append(f"no integration results ({tap_path})")
    if expected is None:
        tally.problems.append(f"no list of expected tests ({exp_path}): cannot tell whether "
                              f"every test ran")
    for name, status, diag in tap:
        if status == "ok":
            tally.passed += 1
        elif status == "skip":
            tally.skipped += 1
        else:
            tally.failed += 1
            print(f"FAIL integration {name}")
            for l in diag:
                print(f"    {l}")
    for name in missing_tests(expected or [], tap):
        tally.failed += 1
        print(f"FAIL integration {name}: no result (it never ran, or the run stopped in it)")

    judge_splats(lines, tally)
    for listing in earlier_runs:
        judge_earlier_runs(Path(listing), tally)

    leak_path = out / "kmemleak.txt"
    leak_text = leak_path.read_text(errors="replace") if leak_path.exists() else None
    if leak_text is None:
        if not ended:  # a run that ended early is already reported as such
            tally.problems.append("no kmemleak report (kmemleak.txt)")
    elif "not available" in leak_text:
        tally.problems.append("no kmemleak report: kmemleak was not enabled in the VM")
    elif leak_text.startswith("kmemleak scan timed out"):
        tally.problems.append(f"kmemleak: {leak_text.strip()}")
    elif kmemleak_leaks(leak_text):
        tally.problems.append(f"kmemleak: {kmemleak_leaks(leak_text)} unreferenced objects:\n" +
                              "\n".join("    " + l for l in leak_text.splitlines()[:60]))

    return tally.summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
