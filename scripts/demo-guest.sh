#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo, inside the test VM: create VFs, load the project's modules, hand an NVMe VF to the
# sample parent driver (vendors/mpw_sample), create an mdev by echoing a UUID into
# mdev_supported_types/<type>/create, and show it, its VFIO nodes and what a VFIO client sees.

set -euo pipefail
root="$MPW_ROOT"
. "$root/tests/guest/lib.sh"

step() { printf '\n==> %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; bash -c "$*" 2>&1 | sed 's/^/  /'; }

step "Emulated SR-IOV hardware: creating VFs"
bash "$root/tests/guest/setup-hw.sh"
. "$MPW_HW_ENV"
show "lspci -nn -s $NVME_PF; for vf in ${NVME_VFS[*]}; do lspci -nn -s \$vf; done"
show "lspci -nn -s $IGB_PF; for vf in ${IGB_VFS[*]}; do lspci -nn -s \$vf; done"

step "Loading mdev, the library and the sample parent driver"
bash "$root/tests/guest/load-modules.sh"
show "lsmod | grep -E '^(mdev|mdev_pci_wrap|mpw_sample)'"

vf="${NVME_VFS[0]}"
step "Handing NVMe VF $vf to mpw_sample (driver_override)"
bind_to mpw_sample "$vf"
show "readlink /sys/bus/pci/devices/$vf/driver; ls /sys/class/mdev_bus/"
t="/sys/class/mdev_bus/$vf/mdev_supported_types/mpw_sample-vf"
show "for f in name device_api available_instances; do echo \"\$f: \$(cat $t/\$f)\"; done"

uuid="$(uuidgen)"
step "Creating an mdev: echo $uuid > $t/create"
echo "$uuid" > "$t/create"
dev="/sys/bus/mdev/devices/$uuid"
group="$(basename "$(readlink "$dev/iommu_group")")"
show "ls -l $dev/"
show "echo available_instances: \$(cat $t/available_instances)"
show "ls -l /dev/vfio/ /dev/vfio/devices/"

client="$root/tests/client/target/release/mpw-vfio-client"
step "What a VFIO client sees through the cdev + iommufd (info, regions, config IDs, NVMe CAP/VS)"
show "$client cdev-open $dev read:0:0:8 read:0:8:4"

step "The VF does DMA through the mdev: NVMe Identify Controller into IOAS-mapped user memory"
show "$client nvme-identify $dev"
show "nvme id-ctrl $NVME_CTRL | grep -E '^(sn|mn) '"

step "The legacy type1 container is refused (passthrough DMA needs iommufd)"
show "$client group-open $group $uuid; dmesg | grep 'legacy VFIO container' | tail -1"

step "Hand it to QEMU with: -object iommufd,id=iommufd0 -device vfio-pci,sysfsdev=$dev,iommufd=iommufd0"
step "Removing it: echo 1 > $dev/remove"
echo 1 > "$dev/remove"
show "ls /sys/bus/mdev/devices/; echo available_instances: \$(cat $t/available_instances)"
unbind_override "$vf"
show "readlink /sys/bus/pci/devices/$vf/driver"
