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


def judge(dmesg, tap, kmemleak=""):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d)
        (p / "dmesg.txt").write_text(dmesg)
        (p / "integration.tap").write_text(tap)
        (p / "kmemleak.txt").write_text(kmemleak)
        buf = io.StringIO()
        with redirect_stdout(buf):
            rc = cr.main(["check_results.py", d])
        return rc, buf.getvalue()


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


if __name__ == "__main__":
    unittest.main()
