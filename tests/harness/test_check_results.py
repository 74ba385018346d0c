# SPDX-License-Identifier: GPL-2.0
"""Self-tests of tests/check_results.py: the judge must catch what it is there to catch."""

import io
import sys
import tempfile
import unittest
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import check_results as cr  # noqa: E402

KTAP_PASS = """\
[   10.000001] KTAP version 1
[   10.000002] 1..1
[   10.000003]     KTAP version 1
[   10.000004]     # Subtest: mdev_pci_wrap_layout
[   10.000005]     1..2
[   10.000006]     ok 1 every_c_fact_has_a_rust_counterpart
[   10.000007]     ok 2 rust_layouts_and_constants_match_c
[   10.000008] # mdev_pci_wrap_layout: pass:2 fail:0 skip:0 total:2
[   10.000009] ok 1 mdev_pci_wrap_layout
"""

KTAP_FAIL = """\
[   10.000001] KTAP version 1
[   10.000002] 1..1
[   10.000003]     KTAP version 1
[   10.000004]     # Subtest: mdev_pci_wrap_layout
[   10.000005]     1..2
[   10.000006]     ok 1 every_c_fact_has_a_rust_counterpart
[   10.000007] mdev_pci_wrap_kunit: sizeof(vfio_device): expected 1024 (C), got 1016 (Rust)
[   10.000008]     # rust_layouts_and_constants_match_c: ASSERTION FAILED at kunit/layout.rs:160
[   10.000009]     not ok 2 rust_layouts_and_constants_match_c
[   10.000010] not ok 1 mdev_pci_wrap_layout
"""

TAP_PASS = "ok 1 setup_hw\nok 2 test_a\n"
TAP_FAIL = "ok 1 setup_hw\nnot ok 2 test_b\n    # thing\n    #   expected: 1\n    #   saw:      2\n"

WARN = """\
[   20.1] ------------[ cut here ]------------
[   20.2] WARNING: CPU: 1 PID: 42 at drivers/vfio/vfio_main.c:100 vfio_foo+0x10/0x20
[   20.3] Modules linked in: mdev_pci_wrap
"""
KASAN = "[   30.0] BUG: KASAN: slab-use-after-free in mpw_thing+0x1/0x2\n"
LOCKDEP = "[ 1.0] WARNING: possible circular locking dependency detected\n"
HUNG = "[ 99.0] INFO: task insmod:123 blocked for more than 60 seconds.\n"
LEAK = "unreferenced object 0xffff888003a2c000 (size 64):\n  comm \"insmod\", pid 1\n"


def judge(dmesg, tap, kmemleak="", expected=None, done=True, rc="0", kmsg=None,
          console=None, stalled=None, died=None, earlier=None, earlier_kmemleak=None):
    """Runs check_results on a made-up OUTDIR. By default the run ended normally and the
    expected tests are exactly those of `tap`; dmesg=None leaves dmesg.txt out."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d)
        if dmesg is not None:
            (p / "dmesg.txt").write_text(dmesg)
        if kmsg is not None:
            (p / "kmsg.txt").write_text(kmsg)
        if console is not None:
            (p / "console.log").write_text(console)
        if stalled is not None:
            (p / "stalled.txt").write_text(stalled)
        if died is not None:
            (p / "died.txt").write_text(died)
        (p / "integration.tap").write_text(tap)
        if kmemleak is not None:
            (p / "kmemleak.txt").write_text(kmemleak)
        if expected is None:
            expected = [name for name, _, _ in cr.parse_tap(tap)]
        (p / "expected-tests.txt").write_text("# comment\n" + "".join(
            n + "\n" for n in expected))
        if rc is not None:
            (p / "cmd.rc").write_text(rc + "\n")
        if done:
            (p / "run-tests.done").write_text("complete\n")
        args = ["check_results.py", d]
        if earlier is not None:
            # The kernel logs (kmsg.txt) of VMs that stalled before this run resumed them.
            dirs = []
            for i, text in enumerate(earlier):
                e = p / f"earlier{i}"
                e.mkdir()
                (e / "kmsg.txt").write_text(text)
                (e / "stalled.txt").write_text(f"the guest stalled (VM {i})\n")
                if earlier_kmemleak is not None:
                    (e / "kmemleak.txt").write_text(earlier_kmemleak[i])
                dirs.append(str(e))
            (p / "earlier-runs.txt").write_text("".join(x + "\n" for x in dirs))
            args.append(f"--earlier={p / 'earlier-runs.txt'}")
        buf = io.StringIO()
        with redirect_stdout(buf):
            rc = cr.main(args)
        return rc, buf.getvalue()


def judge_kunit(dmesg, rc="0"):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d)
        (p / "dmesg.txt").write_text(dmesg)
        if rc is not None:
            (p / "cmd.rc").write_text(rc + "\n")
        buf = io.StringIO()
        with redirect_stdout(buf):
            rc = cr.main(["check_results.py", "--kunit", d])
        return rc, buf.getvalue()


def last_line(out):
    return out.strip().splitlines()[-1]


# The messages of the splat classes a test may expect, as the 7.3 kernel prints them.
DMAR_FAULT = """\
[   40.1] DMAR: DRHD: handling fault status reg 2
[   40.2] DMAR: [DMA Write NO_PASID] Request device [02:00.1] fault addr 0x300000 [fault reason 0x05] PTE Write access is not set
"""
INTR_REMAP = ("[   40.3] DMAR: [INTR-REMAP] Request device [00:03.0] fault index 0x4 "
              "[fault reason 0x25] Present field in the IRTE entry is clear\n")
AER = {
    "source": "[   41.0] pcieport 0000:00:10.0: AER: Correctable error message received "
              "from 0000:01:00.0\n",
    "uncorrectable": "[   41.0] pcieport 0000:00:10.0: AER: Uncorrectable (Non-Fatal) error "
                     "message received from 0000:01:00.0\n",
    "multiple": "[   41.0] pcieport 0000:00:10.0: AER: Multiple Correctable error messages "
                "received, first one from 0000:01:00.0\n",
    "bus error": "[   41.1] igb 0000:01:00.0: AER: PCIe Bus Error: severity=Correctable, "
                 "type=Physical Layer, (Receiver ID)\n",
    "old style": "[   41.0] pcieport 0000:00:1c.0: AER: Corrected error received: "
                 "0000:00:1c.0\n",
}
NOBODY_CARED = ('[   42.0] irq 11: nobody cared (try booting with the "irqpoll" option)\n'
                "[   42.1] handlers:\n")
DISABLING_IRQ = "[   42.2] Disabling IRQ #11\n"
VTD_ITE = ("[   43.0] DMAR: VT-d detected Invalidation Time-out Error: SID 0\n"
           "[   43.1] DMAR: QI HEAD: Device-TLB Invalidation qw0 = 0x1, qw1 = 0x2\n"
           "[   43.2] DMAR: Invalidation Time-out Error (ITE) cleared\n")
VTD_HW_TIMEOUT = "[   43.5] DMAR: VT-d hardware invalidation timeout\n"
PCI_REMOVE_UNLOCKED = """\
[   42.0] ------------[ cut here ]------------
[   42.1] WARNING: drivers/pci/remove.c:128 at pci_stop_and_remove_bus_device+0x5a/0x80, CPU#1: bash/1168
[   42.2] Call Trace:
[   42.3]  pci_iov_remove_virtfn+0x24d/0x430
[   42.4]  igb_disable_sriov+0x9f/0x310
[   42.5] ---[ end trace 0000000000000000 ]---
"""

NEW_SPLATS = {
    "pci-remove-unlocked": PCI_REMOVE_UNLOCKED,
    "dmar-fault": DMAR_FAULT,
    "intr-remap-fault": INTR_REMAP,
    "aer": AER["source"],
    "spurious-irq": NOBODY_CARED,
    "vtd-invalidation": VTD_ITE,
}


def expect(cls, body, test_end=False):
    """BODY wrapped in the markers of expect_splats_begin/end (or ended by the test's end)."""
    end = "[ 50.9] mpw-test: end test_x\n" if test_end else f"[ 50.9] mpw-expect: {cls} end\n"
    return f"[ 50.0] mpw-test: begin test_x\n[ 50.1] mpw-expect: {cls} begin\n" + body + end


class CheckResultsTest(unittest.TestCase):
    def test_all_pass(self):
        rc, out = judge(KTAP_PASS, TAP_PASS)
        self.assertEqual(rc, 0, out)
        self.assertEqual(out.strip().splitlines()[-1], "4 passed, 0 failed")

    def test_kunit_failure_is_counted_and_explained(self):
        rc, out = judge(KTAP_FAIL, TAP_PASS)
        self.assertEqual(rc, 1)
        self.assertIn("FAIL kunit rust_layouts_and_constants_match_c", out)
        self.assertIn("expected 1024 (C), got 1016 (Rust)", out)
        self.assertEqual(out.strip().splitlines()[-1], "3 passed, 1 failed")

    def test_integration_failure_shows_expected_and_saw(self):
        rc, out = judge(KTAP_PASS, TAP_FAIL)
        self.assertEqual(rc, 1)
        self.assertIn("FAIL integration test_b", out)
        self.assertIn("expected: 1", out)
        self.assertIn("saw:      2", out)

    def test_splats_fail_a_run_whose_tests_all_passed(self):
        for splat, kind in [(WARN, "WARN"), (KASAN, "BUG"), (LOCKDEP, "lockdep"),
                            (HUNG, "hung task")]:
            rc, out = judge(KTAP_PASS + splat, TAP_PASS)
            self.assertEqual(rc, 1, f"{kind} not caught:\n{out}")
            self.assertIn("kernel splat", out)

    def test_one_report_per_splat(self):
        self.assertEqual(len(cr.find_splats(WARN.splitlines())), 1)

    def test_kmemleak_report_fails_the_run(self):
        rc, out = judge(KTAP_PASS, TAP_PASS, LEAK)
        self.assertEqual(rc, 1)
        self.assertIn("kmemleak: 1 unreferenced objects", out)

    def test_missing_parts_fail_the_run(self):
        rc, out = judge("", TAP_PASS)
        self.assertEqual(rc, 1)
        self.assertIn("no KTAP output", out)
        rc, out = judge(KTAP_PASS, "")
        self.assertEqual(rc, 1)
        self.assertIn("no integration results", out)
        rc, out = judge(KTAP_PASS, TAP_PASS, "kmemleak not available")
        self.assertEqual(rc, 1)

    # --- splat classes a test may expect ---------------------------------------------

    def test_each_new_splat_class_fails_the_run(self):
        cases = dict(NEW_SPLATS)
        cases.update({f"aer ({k})": v for k, v in AER.items()})
        cases.update({"dmar-fault (DRHD only)": DMAR_FAULT.splitlines(True)[0],
                      "dmar-fault (fault only)": DMAR_FAULT.splitlines(True)[1],
                      "spurious-irq (Disabling IRQ)": DISABLING_IRQ,
                      "vtd-invalidation (hardware timeout)": VTD_HW_TIMEOUT})
        for name, splat in cases.items():
            with self.subTest(name):
                self.assertEqual(len(cr.find_splats(splat.splitlines())), 1, name)
                rc, out = judge(KTAP_PASS + splat, TAP_PASS)
                self.assertEqual(rc, 1, f"{name} not caught:\n{out}")
                self.assertIn("kernel splat", out)

    def test_splat_names_the_step_it_happened_in(self):
        log = ("[ 1.0] mpw-test: begin test_a\n" + KASAN + "[ 31.0] mpw-test: end test_a\n" +
               WARN)
        rc, out = judge(KTAP_PASS + log, TAP_PASS)
        self.assertIn("kernel splat (BUG) during test_a:", out)
        self.assertIn("kernel splat (WARN/BUG):", out)

    def test_benign_neighbours_are_not_splats(self):
        benign = ("[ 1.0] pcieport 0000:00:10.0: AER: enabled with IRQ 24\n"
                  "[ 1.1] DMAR: IOMMU enabled\n"
                  "[ 1.2] DMAR-IR: Enabled IRQ remapping in x2apic mode\n"
                  "[ 1.3] mpw-test: begin test_dma_fault_is_reported\n")
        self.assertEqual(cr.find_splats(benign.splitlines()), [])

    def test_markers_suppress_their_class_between_them(self):
        for cls, splat in NEW_SPLATS.items():
            with self.subTest(cls):
                rc, out = judge(KTAP_PASS + expect(cls, splat), TAP_PASS)
                self.assertEqual(rc, 0, out)
                self.assertEqual(last_line(out), "4 passed, 0 failed")
                self.assertIn(f"expected kernel messages ({cls})", out)

    def test_an_expected_warning_takes_its_cut_here_line_along(self):
        # Expected: the whole report is excused, its `cut here` line included.
        rc, out = judge(KTAP_PASS + expect("pci-remove-unlocked", PCI_REMOVE_UNLOCKED), TAP_PASS)
        self.assertEqual(rc, 0, out)
        # Not expected: reported (as a WARN), and another WARN is never excused by it.
        rc, out = judge(KTAP_PASS + PCI_REMOVE_UNLOCKED, TAP_PASS)
        self.assertEqual(rc, 1, out)
        rc, out = judge(KTAP_PASS + expect("pci-remove-unlocked", WARN), TAP_PASS)
        self.assertEqual(rc, 1, out)

    def test_a_stalled_guest_is_reported_as_such(self):
        rc, out = judge(None, TAP_PASS, done=False, rc=None, kmsg=KTAP_PASS,
                        stalled="the guest stalled: no kernel log, console or output for 480s")
        self.assertEqual(rc, 1, out)
        self.assertIn("PROBLEM the guest stalled", out)

    def test_a_vm_that_died_is_reported_with_how_qemu_ended(self):
        why = ("the VM ended during the run without the guest's status (vng exit 0); QEMU: "
               'SHUTDOWN {"guest": true, "reason": "guest-reset"}')
        rc, out = judge(None, TAP_PASS, done=False, rc=None, kmsg=KTAP_PASS, died=why)
        self.assertEqual(rc, 1, out)
        self.assertIn("PROBLEM " + why, out)

    def test_splats_of_a_stalled_vm_fail_the_resumed_run(self):
        rc, out = judge(KTAP_PASS, TAP_PASS, earlier=[KTAP_PASS])
        self.assertEqual(rc, 0, out)
        self.assertIn("WARNING the earlier VM of", out)
        self.assertIn("the guest stalled (VM 0); its kernel log is judged too", out)
        rc, out = judge(KTAP_PASS, TAP_PASS, earlier=[KTAP_PASS, KTAP_PASS + KASAN])
        self.assertEqual(rc, 1, out)
        self.assertIn("(in the earlier VM of", out)
        self.assertIn("BUG: KASAN: slab-use-after-free", out)
        rc, out = judge(KTAP_PASS, TAP_PASS, earlier=[""])
        self.assertEqual(rc, 1, out)
        self.assertIn("no kernel log of the earlier VM", out)

    def test_leaks_of_a_stalled_vm_fail_the_resumed_run(self):
        # The earlier VM wrote its kmemleak report (before the `# mpw-kmemleak: off` files'
        # tests) and stalled after it: its leaks count, its empty report does not.
        rc, out = judge(KTAP_PASS, TAP_PASS, earlier=[KTAP_PASS], earlier_kmemleak=[""])
        self.assertEqual(rc, 0, out)
        rc, out = judge(KTAP_PASS, TAP_PASS, earlier=[KTAP_PASS], earlier_kmemleak=[LEAK])
        self.assertEqual(rc, 1, out)
        self.assertIn("(in the earlier VM of", out)
        self.assertIn("kmemleak: 1 unreferenced objects", out)

    def test_a_resumed_run_keeps_all_but_the_stalled_test(self):
        head = ("ok 1 setup_hw\nok 2 load_modules\nok 3 test_a\nnot ok 4 test_b\n"
                "    # b broke\n    #   expected: 1\nok 5 parse_x\nok 6 test_c\n")
        kept = "ok 3 test_a\nnot ok 4 test_b\n    # b broke\n    #   expected: 1\nok 6 test_c\n"
        # The stall seen at the end of test_d's time limit: test_d runs again.
        timed_out = head + "not ok 7 test_d\n    # test_d: timed out after 300 s; it was stopped here\n"
        self.assertEqual(cr.resume_tap(timed_out), kept)
        # The guest's watcher saw it first: test_d has no result; all are kept.
        self.assertEqual(cr.resume_tap(head), kept)
        # A test that failed on its own is kept, even last.
        failed = head + "not ok 7 test_d\n    # d broke\n"
        self.assertEqual(cr.resume_tap(failed), kept + "not ok 7 test_d\n    # d broke\n")
        self.assertEqual(cr.resume_tap(""), "")
        self.assertEqual(cr.resume_tap("ok 1 test_a\n"), "ok 1 test_a\n")

    def test_resume_after_a_vm_that_left_no_results(self):
        # A VM that stalled while booting wrote no integration.tap: nothing is kept, no error.
        with tempfile.TemporaryDirectory() as d:
            buf = io.StringIO()
            with redirect_stdout(buf):
                rc = cr.main(["check_results.py", "--resume", str(Path(d) / "integration.tap")])
            self.assertEqual((rc, buf.getvalue()), (0, ""))

    def test_the_test_end_closes_its_expectations(self):
        rc, out = judge(KTAP_PASS + expect("dmar-fault", DMAR_FAULT, test_end=True), TAP_PASS)
        self.assertEqual(rc, 0, out)
        rc, out = judge(KTAP_PASS + expect("dmar-fault", "", test_end=True) + DMAR_FAULT,
                        TAP_PASS)
        self.assertEqual(rc, 1, out)

    def test_markers_suppress_only_their_class(self):
        for cls in NEW_SPLATS:
            for other, splat in NEW_SPLATS.items():
                if other == cls:
                    continue
                with self.subTest(expected=cls, seen=other):
                    rc, out = judge(KTAP_PASS + expect(cls, splat), TAP_PASS)
                    self.assertEqual(rc, 1, out)
        # Nor any of the classic splats.
        rc, out = judge(KTAP_PASS + expect("dmar-fault", WARN), TAP_PASS)
        self.assertEqual(rc, 1, out)

    def test_markers_suppress_only_between_them(self):
        before = DMAR_FAULT + expect("dmar-fault", "")
        after = expect("dmar-fault", "") + DMAR_FAULT
        for name, log in [("before", before), ("after", after)]:
            with self.subTest(name):
                rc, out = judge(KTAP_PASS + log, TAP_PASS)
                self.assertEqual(rc, 1, out)
                self.assertIn("kernel splat (IOMMU DMA fault)", out)

    def test_unknown_class_in_a_marker_is_a_problem(self):
        rc, out = judge(KTAP_PASS + expect("dmar-faults", ""), TAP_PASS)
        self.assertEqual(rc, 1, out)
        self.assertIn("unknown splat class in mpw-expect marker: dmar-faults", out)

    # --- tests that never reported ------------------------------------------------------

    def test_missing_tests_count_as_failed(self):
        rc, out = judge(KTAP_PASS, TAP_PASS, expected=["setup_hw", "test_a", "test_c",
                                                       "test_d"])
        self.assertEqual(rc, 1, out)
        self.assertIn("FAIL integration test_c: no result", out)
        self.assertIn("FAIL integration test_d: no result", out)
        self.assertEqual(last_line(out), "4 passed, 2 failed")

    def test_a_test_expected_twice_needs_two_results(self):
        rc, out = judge(KTAP_PASS, TAP_PASS, expected=["setup_hw", "test_a", "test_a"])
        self.assertEqual(rc, 1, out)
        self.assertEqual(last_line(out), "4 passed, 1 failed")

    def test_missing_expected_list_is_a_problem(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d)
            (p / "dmesg.txt").write_text(KTAP_PASS)
            (p / "integration.tap").write_text(TAP_PASS)
            (p / "kmemleak.txt").write_text("")
            (p / "cmd.rc").write_text("0\n")
            (p / "run-tests.done").write_text("complete\n")
            buf = io.StringIO()
            with redirect_stdout(buf):
                rc = cr.main(["check_results.py", d])
        self.assertEqual(rc, 1, buf.getvalue())
        self.assertIn("no list of expected tests", buf.getvalue())

    # --- runs that did not end -----------------------------------------------------------

    def test_early_abort_is_reported_as_such(self):
        rc, out = judge(KTAP_PASS, TAP_PASS, kmemleak=None, done=False, rc="1",
                        expected=["setup_hw", "test_a", "test_b"])
        self.assertEqual(rc, 1, out)
        self.assertIn("the guest run ended early with status 1", out)
        self.assertNotIn("kmemleak was not enabled", out)
        self.assertNotIn("no kmemleak report", out)
        self.assertIn("FAIL integration test_b: no result", out)

    def test_run_that_never_ended_is_reported_as_such(self):
        rc, out = judge(None, TAP_PASS, kmemleak=None, done=False, rc=None,
                        kmsg=KTAP_PASS)
        self.assertEqual(rc, 1, out)
        self.assertIn("the guest run never ended", out)
        self.assertNotIn("kmemleak was not enabled", out)

    def test_kmsg_fallback_when_dmesg_is_missing(self):
        rc, out = judge(None, TAP_PASS, done=False, rc=None, kmsg=KTAP_PASS + KASAN)
        self.assertEqual(rc, 1, out)
        self.assertIn("judging the kernel log saved as it was written (kmsg.txt)", out)
        self.assertIn("kernel splat (BUG)", out)
        self.assertNotIn("no KTAP output", out)  # the KTAP is read from kmsg.txt
        self.assertNotIn("FAIL kunit", out)

    def test_console_fallback_when_no_kernel_log_was_saved(self):
        console = ("virtme-ng-init: mount devtmpfs\n" + WARN +
                   "[   25.0] mpw-test: begin test_b\n")
        rc, out = judge(None, TAP_PASS, done=False, rc=None, console=console)
        self.assertEqual(rc, 1, out)
        self.assertIn("judging the serial console (console.log", out)
        self.assertIn("kernel splat (WARN/BUG)", out)

    def test_kmsg_completes_a_wrapped_dmesg(self):
        # dmesg.txt lost the KTAP (ring buffer overwritten); kmsg.txt has it, and lags at
        # the end: the splat only dmesg.txt has must still be found.
        kmsg = KTAP_PASS + "[   15.0] something\n"
        dmesg = "[   15.0] something\n[   20.0] later\n" + KASAN
        rc, out = judge(dmesg, TAP_PASS, kmsg=kmsg)
        self.assertEqual(rc, 1, out)
        self.assertNotIn("no KTAP output", out)
        self.assertIn("kernel splat (BUG)", out)
        self.assertEqual(out.count("kernel splat"), 1)

    def test_kmemleak_scan_time_out_fails_the_run(self):
        rc, out = judge(KTAP_PASS, TAP_PASS, "kmemleak scan timed out after 900 s\n")
        self.assertEqual(rc, 1, out)
        self.assertIn("PROBLEM kmemleak: kmemleak scan timed out", out)

    # --- SKIP --------------------------------------------------------------------------

    def test_skipped_integration_test_counts_as_skipped(self):
        tap = TAP_PASS + "ok 3 test_needs_kvm # SKIP no /dev/kvm\n"
        rc, out = judge(KTAP_PASS, tap)
        self.assertEqual(rc, 0, out)
        self.assertEqual(last_line(out), "4 passed, 0 failed, 1 skipped")

    # --- make kunit ----------------------------------------------------------------------

    def test_kunit_only_mode(self):
        rc, out = judge_kunit("[ 1.0] boot\n" + KTAP_PASS)
        self.assertEqual(rc, 0, out)
        self.assertIn("    ok 2 rust_layouts_and_constants_match_c", out)
        self.assertEqual(last_line(out), "2 passed, 0 failed")
        # The empty KTAP of the built-in KUnit at boot, and the boot log, are not printed.
        rc, out = judge_kunit("[ 0.5] KTAP version 1\n[ 0.6] 1..0\n[ 1.0] boot noise\n" +
                              KTAP_PASS)
        self.assertEqual(rc, 0, out)
        self.assertNotIn("boot noise", out)
        rc, out = judge_kunit(KTAP_FAIL)
        self.assertEqual(rc, 1, out)
        self.assertEqual(last_line(out), "1 passed, 1 failed")
        rc, out = judge_kunit(KTAP_PASS + KASAN)
        self.assertEqual(rc, 1, out)
        rc, out = judge_kunit(KTAP_PASS, rc="1")
        self.assertEqual(rc, 1, out)
        self.assertIn("loading or unloading the modules failed (status 1)", out)


if __name__ == "__main__":
    unittest.main()
