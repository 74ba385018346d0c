#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make install and make uninstall into a scratch root (INSTALL_MOD_PATH) for the test kernel:
# what make built lands in lib/modules/<release>/extra, depmod records that mpw_sample needs
# the library, and uninstall takes every module and its modules.dep line away again. (The
# test VM installs into its own module directory and loads with modprobe: load-modules.sh.)
# Its last line is the summary.

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
kdir="$(bash "$root/scripts/env.sh" --print-kdir)"
krel="$(cat "$kdir/include/config/kernel.release")"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
moddir="$scratch/lib/modules/$krel"

fail() {
	echo "FAIL: $*"
	exit 1
}

built="$(sed -n 's/\.o$//p' "$root/modules.order" | sort | paste -sd' ')"
make -s -C "$root" KDIR="$kdir" INSTALL_MOD_PATH="$scratch" install 2>&1 |
	grep -v "^depmod: WARNING: .*\(needs unknown symbol\|could not open modules\.\(builtin\|order\)\)" || true
installed="$(find "$moddir/extra" -name '*.ko' -printf '%f\n' | sed 's/\.ko$//' | sort | paste -sd' ')"
[ "$installed" = "$built" ] || fail "installed '$installed', built '$built'"
grep -qx 'extra/mpw_sample.ko: extra/mdev_pci_wrap.ko' "$moddir/modules.dep" ||
	fail "modules.dep: $(grep mpw_sample "$moddir/modules.dep")"
make -s -C "$root" KDIR="$kdir" INSTALL_MOD_PATH="$scratch" uninstall 2>&1 |
	grep -v "^depmod: WARNING: .*could not open modules\.\(builtin\|order\)" || true
left="$(find "$moddir" -name '*.ko*' | paste -sd' ')"
[ -z "$left" ] || fail "left after make uninstall: $left"
! grep -q 'extra/' "$moddir/modules.dep" || fail "modules.dep after uninstall: $(cat "$moddir/modules.dep")"
echo "install: make install put $built into extra/ of $krel with the library as mpw_sample's dependency; make uninstall took them away"
