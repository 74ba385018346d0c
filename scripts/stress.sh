#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make stress: the long loops, bounded. Builds, boots the test VM once, sets up the hardware,
# loads the modules and runs
#   - tests/stress/lifecycle.sh with MPW_STRESS_ROUNDS rounds (default 1000) of the lifecycle
#     races (create/remove, open/close, remove, unbind, module unload and sriov_numvfs=0 while
#     open, two at once);
#   - the client's fuzzer with MPW_FUZZ_OPS operations (default 1000000) on an NVMe VF's mdev,
#     seed MPW_FUZZ_SEED (default: the time, printed for reproduction), then an NVMe Identify
#     by DMA through it;
# and judges the kernel log (no splat, no kmemleak report) with tests/check_results.py. Prints
# progress, ends with a summary (`N passed, N failed`); exits non-zero on any failure.

set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/vm.sh
. "$here/vm.sh"

if [ "${MPW_NO_BUILD:-0}" != 1 ]; then
	make -s -C "$MPW_ROOT" modules client || { echo "building failed"; exit 1; }
fi
out="$MPW_ROOT/out/stress"
rm -rf "$out"
mkdir -p "$out"
rounds="${MPW_STRESS_ROUNDS:-1000}"
ops="${MPW_FUZZ_OPS:-1000000}"
seed="${MPW_FUZZ_SEED:-$(date +%s)}"
echo "[stress] $rounds lifecycle rounds, $ops fuzz operations (seed $seed); output: $out"
mpw_vm_follow "$out"
guest="MPW_STRESS_ROUNDS=$rounds MPW_FUZZ_OPS=$ops MPW_FUZZ_SEED=$seed bash tests/stress/guest.sh"
rc=0
mpw_vm_run "$out" "${MPW_STRESS_TIMEOUT:-10800}" "$guest" || rc=$?
sleep 1
mpw_vm_unfollow
echo "[stress] VM run finished (status $rc)"
python3 "$MPW_ROOT/tests/check_results.py" "$out"
