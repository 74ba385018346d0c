# SPDX-License-Identifier: GPL-2.0
"""Self-tests of scripts/qemu-evidence.py against a real (paused) QEMU: the QMP commands it
relies on exist in the QEMU the project installs, and it names QEMU's threads."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "scripts" / "qemu-evidence.py"
QEMU = shutil.which("qemu-system-x86_64")


@unittest.skipIf(QEMU is None, "qemu-system-x86_64 is not installed")
class QemuEvidence(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.sock = str(Path(self.tmp.name) / "qmp.sock")
        self.qemu = subprocess.Popen(
            [QEMU, "-machine", "q35", "-S", "-display", "none", "-nodefaults",
             "-device", "virtio-rng-pci", "-name", "evidence,debug-threads=on",
             "-qmp", f"unix:{self.sock},server=on,wait=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if Path(self.sock).exists():
                break
            time.sleep(0.1)

    def tearDown(self):
        self.qemu.kill()
        self.qemu.wait()
        self.tmp.cleanup()

    def run_tool(self, sock):
        return subprocess.run([sys.executable, str(TOOL), str(self.qemu.pid), sock, "1"],
                              capture_output=True, text=True, timeout=60, check=True,
                              env=dict(os.environ, MPW_EVIDENCE_SETTLE="0")).stdout

    def test_threads_and_virtio_queues(self):
        out = self.run_tool(self.sock)
        self.assertIn("CPU 0/TCG", out)
        self.assertRegex(out, r"virtio-rng \S+: status")
        # A queue the guest never used is counted, not listed.
        self.assertIn("(1 queue(s) never used)", out)
        # The guest's own evidence: QEMU takes the SysRq keys (send-key exists and the
        # machine has a keyboard).
        for k in "wlm":
            self.assertIn(f"sent SysRq {k}", out)

    def test_no_qmp_is_said_not_fatal(self):
        out = self.run_tool(self.sock + ".missing")
        self.assertIn("CPU 0/TCG", out)
        self.assertIn("(QMP ", out)


if __name__ == "__main__":
    unittest.main()
