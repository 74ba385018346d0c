#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Make the tables of a `make bench` run (scripts/bench.sh).

usage: bench-report.py OUTDIR [DOC]

Reads OUTDIR/bench-raw.txt (`rep=N mode=M bench=PN key=value`, one measurement a line,
written by tests/bench/guest.sh) and OUTDIR/machine.txt; writes OUTDIR/results.md and
prints it. For each measurement: the median and the spread (min..max) of each mode over
the repetitions, and the ratio mdev / vfio-pci of the medians with the spread of the
per-repetition ratios (the two modes of a repetition ran back to back), against the goal.

With DOC (docs/benchmarks.md), replaces the part of it between the lines
`<!-- bench-results begin -->` and `<!-- bench-results end -->` with the same text, unless
the host was busy during the run (another QEMU running): then DOC is left alone, unless
MPW_BENCH_DOC=1, and the text says the numbers are not a result.
"""

import os
import statistics
import sys
from collections import defaultdict
from pathlib import Path

BEGIN = "<!-- bench-results begin -->"
END = "<!-- bench-results end -->"

# (bench, key, what, unit, better, goal): better is "higher" or "lower"; goal is the bound
# on the ratio mdev / vfio-pci (None: no goal, the ratio is shown).
METRICS = [
    ("P1", "mmio_read_per_s", "P1 MMIO reads through mmap", "reads/s", "higher", 0.99),
    ("P1", "mmio_write_per_s", "P1 MMIO writes through mmap", "writes/s", "higher", 0.99),
    ("P2", "cfg_read_ns", "P2 config space pread, 4 bytes", "ns", "lower", 1.05),
    ("P2", "cfg_write_ns", "P2 config space pwrite (COMMAND), 2 bytes", "ns", "lower", 1.05),
    ("P2", "bar_read_ns", "P2 BAR0 register pread, 4 bytes", "ns", "lower", 1.05),
    ("P2", "bar_write_ns", "P2 BAR0 register pwrite, 4 bytes", "ns", "lower", 1.05),
    ("P3qd1", "nvme_read_qd1_per_s", "P3 NVMe 4 KiB reads, QD 1", "IOPS", "higher", 0.98),
    ("P3qd1", "nvme_read_qd1_ns", "P3 NVMe 4 KiB read latency, QD 1", "ns", "lower", None),
    ("P3qd32", "nvme_read_qd32_per_s", "P3 NVMe 4 KiB reads, QD 32", "IOPS", "higher", 0.98),
    ("P4", "total_ns", "P4 to an open, DMA-ready device: vfio-pci from nvme (unbind, bind, "
     "open), mdev from its parent driver (create, open)", "ns", "lower", None),
    ("P4", "ready_ns", "P4 without the unbind: bind and open (vfio-pci), create and open (mdev)",
     "ns", "lower", None),
    ("P4", "open_ns", "P4 of which: open, iommufd bind, attach, map", "ns", "lower", None),
    ("P4", "close_ns", "P4 close", "ns", "lower", None),
]
P4_STEPS = [("vfio-pci", "unbind_ns", "unbind from nvme"), ("vfio-pci", "bind_ns", "bind to vfio-pci"),
            ("mdev", "create_ns", "echo uuid > create"),
            ("mdev", "parent_bind_ns", "once per VF, not timed in the total: unbind from nvme, bind to mpw_sample")]


def read_raw(path):
    """{(bench, key): {mode: {rep: value}}} and the lines without a bench (rep=... absent)."""
    data = defaultdict(lambda: defaultdict(dict))
    flags = {}
    for line in path.read_text().splitlines():
        fields = dict(f.split("=", 1) for f in line.split(" ", 3)[:3] if "=" in f)
        if "bench" not in fields:
            k, _, v = line.partition("=")
            flags[k] = v
            continue
        k, _, v = line.split(" ", 3)[3].partition("=")
        try:
            data[(fields["bench"], k)][fields["mode"]][int(fields["rep"])] = float(v)
        except ValueError:
            continue
    return data, flags


def fmt(v, unit):
    if unit == "ns":
        if v >= 1e6:
            return f"{v / 1e6:.2f} ms"
        if v >= 1e4:
            return f"{v / 1e3:.1f} µs"
        return f"{v:.0f} ns"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M"
    if v >= 1e4:
        return f"{v / 1e3:.1f} k"
    return f"{v:.0f}"


def spread(vals, unit):
    return f"{fmt(statistics.median(vals), unit)} ({fmt(min(vals), unit)}..{fmt(max(vals), unit)})"


def verdict(ratio, better, goal):
    if goal is None:
        return "(no goal)"
    ok = ratio >= goal if better == "higher" else ratio <= goal
    return f"{'≥' if better == 'higher' else '≤'} {goal}: {'met' if ok else '**missed**'}"


def machine(out):
    m = {}
    p = out / "machine.txt"
    if p.exists():
        for line in p.read_text().splitlines():
            k, _, v = line.partition("=")
            m[k] = v
    return m


def busy(m):
    """Why the host was not idle during the run ('' if it was)."""
    why = []
    for k in ("host_before", "host_after"):
        v = m.get(k, "")
        if "other_qemu=" in v and v.split("other_qemu=")[1].split()[0] != "0":
            why.append(f"{k.replace('host_', '')} the run: {v}")
    during = m.get("other_qemu_during", "0")
    if during not in ("", "0"):
        why.append(f"up to {during} other QEMU process(es) during the run")
    return "; ".join(why)


def report(out):
    data, flags = read_raw(out / "bench-raw.txt")
    m = machine(out)
    lines = []
    why = busy(m)
    if why:
        lines += [f"**Trial run under contention, not a result**: the host was busy ({why}).", ""]
    lines += [
        f"- command: `{m.get('command', '?')}`",
        f"- date: {m.get('date', '?')}, commit {m.get('commit', '?')}",
        f"- machine: {m.get('host', '?')}, {m.get('cpu', '?')}, {m.get('nproc', '?')} CPUs, "
        f"{m.get('mem', '?')}; {m.get('qemu', '?')}, {m.get('accel', '?')}",
        f"- guest: {m.get('guest', '?')} (KASAN, lockdep, kmemleak: the test kernel)",
        f"- host before/after the VM run: {m.get('host_before', '?')} / {m.get('host_after', '?')}",
        "",
    ]
    reps = {r for (b, _), by_mode in data.items() if b != "P8"
            for vals in by_mode.values() for r in vals}
    lines += [f"{len(reps)} repetitions; each cell: median (min..max); ratio: mdev / vfio-pci "
              "of the medians (min..max of the per-repetition ratios).", "",
              "| measurement | vfio-pci | mdev | ratio | goal |", "|---|---|---|---|---|"]
    for bench, key, what, unit, better, goal in METRICS:
        by_mode = data.get((bench, key))
        if not by_mode or "vfio-pci" not in by_mode or "mdev" not in by_mode:
            if bench.startswith("P3") and flags.get("p3_namespace") == "0":
                lines.append(f"| {what} | not measured: no namespace | | | |")
            else:
                lines.append(f"| {what} | no data | | | |")
            continue
        v, d = by_mode["vfio-pci"], by_mode["mdev"]
        ratio = statistics.median(d.values()) / statistics.median(v.values())
        paired = [d[r] / v[r] for r in sorted(set(v) & set(d)) if v[r]]
        lines.append(f"| {what} ({unit}) | {spread(list(v.values()), unit)} | "
                     f"{spread(list(d.values()), unit)} | {ratio:.3f} "
                     f"({min(paired):.3f}..{max(paired):.3f}) | {verdict(ratio, better, goal)} |")
    for mode, key, what in P4_STEPS:
        vals = data.get(("P4", key), {}).get(mode)
        if vals:
            lines.append(f"| P4 of which: {what} ({mode} only) | "
                         f"{spread(list(vals.values()), 'ns') if mode == 'vfio-pci' else ''} | "
                         f"{spread(list(vals.values()), 'ns') if mode == 'mdev' else ''} | | |")
    lines += ["", *scale_report(data)]
    return "\n".join(lines) + "\n", why


def scale_report(data):
    p8 = {k: v.get("mdev", {}) for (b, k), v in data.items() if b == "P8"}
    if not p8:
        return ["P8 (scale): no data."]
    n = int(p8.get("vfs", {}).get(0, 0))
    rounds = sorted(p8.get("created", {}))
    out = [f"P8 (scale): {n} VFs (every VF of every SR-IOV PF), one mdev each, created "
           f"concurrently, then removed concurrently; {len(rounds)} rounds.", "",
           "| round | created | removed | create all | remove all |", "|---|---|---|---|---|"]
    for r in rounds:
        out.append(f"| {r} | {p8['created'][r]:.0f}/{n} | {p8.get('removed', {}).get(r, 0):.0f}/{n} | "
                   f"{fmt(p8.get('create_all_ns', {}).get(r, 0), 'ns')} | "
                   f"{fmt(p8.get('remove_all_ns', {}).get(r, 0), 'ns')} |")
    out += ["", "Kernel memory per mdev (/proc/meminfo, caches dropped before each reading, "
            "including the one with the mdevs; "
            "median (min..max) over the rounds): with the mdevs minus before them, divided by "
            "the number of mdevs; and what was left after their removal, in all.", "",
            "| counter | per mdev | left after removal (all) |", "|---|---|---|"]
    for k in ("Slab", "SUnreclaim", "VmallocUsed", "Percpu"):
        per, left = [], []
        for r in rounds:
            b, w, a = (p8.get(f"{s}_{k}", {}).get(r) for s in ("before", "with", "after"))
            if None in (b, w, a) or not n:
                continue
            per.append((w - b) / n)
            left.append(a - b)
        if per:
            out.append(f"| {k} | {statistics.median(per):.1f} KiB ({min(per):.1f}..{max(per):.1f}) | "
                       f"{statistics.median(left):.0f} KiB ({min(left):.0f}..{max(left):.0f}) |")
    return out


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__)
        return 2
    out = Path(argv[1])
    if not (out / "bench-raw.txt").exists():
        print(f"bench-report: no measurements ({out / 'bench-raw.txt'})")
        return 1
    text, why = report(out)
    (out / "results.md").write_text(text)
    print(text, end="")
    if len(argv) == 3:
        doc = Path(argv[2])
        if why and os.environ.get("MPW_BENCH_DOC") != "1":
            print(f"[bench] {doc} left alone: the host was busy ({why}); MPW_BENCH_DOC=1 "
                  f"writes it anyway, marked as not a result")
            return 0
        old = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
        if BEGIN not in old or END not in old:
            print(f"bench-report: no {BEGIN} ... {END} in {doc}")
            return 1
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        doc.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")
        print(f"[bench] results written to {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
