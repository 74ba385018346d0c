#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM: loads the mdev core and the project's modules (library first, then
# every vendor module that was built).
#   --kunit        also load the KUnit module, whose suites run at load time and print KTAP
#                  to the kernel log
#   --kunit-only   the library and the KUnit module only, no vendor module (`make kunit`)
#   --unload       unload the KUnit module if it is loaded, every vendor module that was
#                  built, then the library; fails if one is not loaded or does not let go

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mode="${1:-}"

loaded() { # NAME
	grep -q "^$1 " /proc/modules
}

load() { # MODULE.ko
	local name
	name="$(basename "$1" .ko)"
	loaded "$name" || insmod "$1"
}

if [ "$mode" = --unload ]; then
	! loaded mdev_pci_wrap_kunit || rmmod mdev_pci_wrap_kunit
	for ko in "$root"/*.ko; do
		[ -e "$ko" ] || continue
		name="$(basename "$ko" .ko)"
		case "$name" in
		mdev_pci_wrap | mdev_pci_wrap_kunit) ;;
		*) rmmod "$name" ;;
		esac
	done
	rmmod mdev_pci_wrap
	exit 0
fi

modprobe mdev
load "$root/mdev_pci_wrap.ko"
if [ "$mode" != --kunit-only ]; then
	for ko in "$root"/*.ko; do
		[ -e "$ko" ] || continue
		case "$(basename "$ko")" in
		mdev_pci_wrap.ko | mdev_pci_wrap_kunit.ko) ;;
		*) load "$ko" ;;
		esac
	done
fi
if [ "$mode" = --kunit ] || [ "$mode" = --kunit-only ]; then
	load "$root/mdev_pci_wrap_kunit.ko"
fi
