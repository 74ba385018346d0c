#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: build what is needed, boot the test VM, create VFs and an mdev, and show them.

set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
make -s -C "$root" deps kernel
make -s -C "$root" modules client
# shellcheck source=scripts/vm.sh
. "$here/vm.sh"
out="$root/out/demo"
rm -rf "$out"
mkdir -p "$out"
echo "[demo] booting the test VM (about a minute under TCG)"
: > "$out/cmd.out"
tail -n +1 -F "$out/cmd.out" 2>/dev/null &
tailer=$!
rc=0
mpw_vm_run "$out" "${MPW_VM_TIMEOUT:-1200}" bash scripts/demo-guest.sh || rc=$?
sleep 1
kill $tailer 2>/dev/null || true
wait $tailer 2>/dev/null || true
echo "[demo] exit status $rc; kernel log: $out/dmesg.txt"
exit $rc
