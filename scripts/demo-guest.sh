#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo, inside the test VM: create VFs, load the project's modules, create an mdev by
# echoing a UUID into mdev_supported_types/<type>/create, and show it.
#
# The library's own parent driver does not exist yet (next issue), so the kernel's mtty
# sample mdev stands in for it here.

set -euo pipefail
root="$MPW_ROOT"
. "$root/tests/guest/lib.sh"

step() { printf '\n==> %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; bash -c "$*" 2>&1 | sed 's/^/  /'; }

step "Emulated SR-IOV hardware: creating VFs"
bash "$root/tests/guest/setup-hw.sh"
. "$MPW_HW_ENV"
show "lspci -nn -s $IGB_PF; for vf in ${IGB_VFS[*]}; do lspci -nn -s \$vf; done"
show "lspci -nn -s $NVME_PF; for vf in ${NVME_VFS[*]}; do lspci -nn -s \$vf; done"
show "for d in /sys/kernel/iommu_groups/*; do echo \"group \$(basename \$d): \$(ls \$d/devices | tr '\n' ' ')\"; done | sort -n -k2"

step "Loading mdev and the project's modules"
bash "$root/tests/guest/load-modules.sh"
modprobe mtty
show "lsmod | grep -E '^(mdev|mtty|mdev_pci_wrap)'"

step "Parents and their mdev types"
show "ls /sys/class/mdev_bus/"
t=/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2
show "for f in name description device_api available_instances; do [ -e $t/\$f ] && echo \"\$f: \$(cat $t/\$f)\"; done; true"

uuid="$(uuidgen)"
step "Creating an mdev: echo $uuid > $t/create"
echo "$uuid" > "$t/create"
dev="/sys/bus/mdev/devices/$uuid"
group="$(basename "$(readlink "$dev/iommu_group")")"
show "ls -l $dev/"
show "readlink -f $dev/mdev_type; cat $t/available_instances"
show "ls -l /dev/vfio/; ls -l /dev/vfio/devices/ 2>/dev/null || true"

step "Opening it as a VFIO client would (group $group, type1 container)"
show "$root/tests/client/target/release/mpw-vfio-client group-open $group $uuid"

step "Hand it to QEMU with: -device vfio-pci,sysfsdev=$dev"
step "Removing it: echo 1 > $dev/remove"
echo 1 > "$dev/remove"
show "ls /sys/bus/mdev/devices/; cat $t/available_instances"
