#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make vm-run CMD='...': run one command in the test VM (same kernel and emulated hardware as
# the tests), with the project's modules built and loadable but not loaded, and the repository
# as the working directory. Prints the command's output; exits with its status.
#
# Helpers available to CMD inside the VM: tests/guest/setup-hw.sh (create VFs),
# tests/guest/load-modules.sh (`make install` into the guest's module directory, then
# modprobe the project's modules). The kernel log is saved to $MPW_OUT/dmesg.txt at the end
# and to $MPW_OUT/kmsg.txt as it is written (default out/vm-run/).

set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/vm.sh
. "$here/vm.sh"

[ $# -gt 0 ] || { echo "usage: make vm-run CMD='command line'" >&2; exit 2; }
if [ "${MPW_NO_BUILD:-0}" != 1 ]; then
	make -s -C "$MPW_ROOT" modules client >&2
fi
out="${MPW_OUT:-$MPW_ROOT/out/vm-run}"
rc=0
mpw_vm_run "$out" "${MPW_VM_TIMEOUT:-1200}" "$*" || rc=$?
cat "$out/cmd.out" 2>/dev/null || true
echo "[vm-run] exit status $rc; kernel log: $out/dmesg.txt" >&2
exit $rc
