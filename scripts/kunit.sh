#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make kunit: the KUnit suites alone, in a few minutes. Builds the modules, boots the test VM
# once, loads the mdev core, the library and the KUnit module only (the suites run at load
# and print KTAP to the kernel log), unloads them, and judges the KTAP and the kernel log
# with tests/check_results.py --kunit. Ends with `N passed, N failed`; exits non-zero on a
# failed case, a missing KTAP, a module that does not load or unload, or a kernel splat.
# MPW_NO_BUILD=1 skips the build; the kernel log is saved to out/kunit/.

set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/vm.sh
. "$here/vm.sh"

if [ "${MPW_NO_BUILD:-0}" != 1 ]; then
	make -s -C "$MPW_ROOT" modules || { echo "building the modules failed"; exit 1; }
fi
for ko in mdev_pci_wrap mdev_pci_wrap_kunit; do
	[ -f "$MPW_ROOT/$ko.ko" ] || { echo "no $ko.ko: build the modules first"; exit 1; }
done
out="$MPW_ROOT/out/kunit"
rm -rf "$out"
echo "[kunit] booting the test VM (about a minute under TCG); kernel log: $out/kmsg.txt"
rc=0
mpw_vm_run "$out" "${MPW_KUNIT_TIMEOUT:-900}" \
	"bash tests/guest/load-modules.sh --kunit-only && rmmod mdev_pci_wrap_kunit &&" \
	"rmmod mdev_pci_wrap" || rc=$?
[ $rc = 0 ] || { echo "[kunit] VM run: status $rc"; cat "$out/cmd.out" 2>/dev/null; }
# Its last line is the summary: `N passed, N failed`.
python3 "$MPW_ROOT/tests/check_results.py" --kunit "$out"
