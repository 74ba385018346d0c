#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM: loads the mdev core and the project's modules (library first, then
# every vendor module that was built). With --kunit, also loads the KUnit module, whose
# suites run at load time and print KTAP to the kernel log.

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

load() { # MODULE.ko
	local name
	name="$(basename "$1" .ko)"
	grep -q "^$name " /proc/modules || insmod "$1"
}

modprobe mdev
load "$root/mdev_pci_wrap.ko"
for ko in "$root"/*.ko; do
	[ -e "$ko" ] || continue
	case "$(basename "$ko")" in
	mdev_pci_wrap.ko | mdev_pci_wrap_kunit.ko) ;;
	*) load "$ko" ;;
	esac
done
if [ "${1:-}" = --kunit ]; then
	load "$root/mdev_pci_wrap_kunit.ko"
fi
