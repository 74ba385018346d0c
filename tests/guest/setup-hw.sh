#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM: creates the SR-IOV VFs and records where everything is.
#   igb:  2 VFs (igb is bound to the PF at boot; the VFs bind to igbvf).
#   NVMe: 2 VFs, each given flexible resources with `nvme virt-mgmt` (2 queues, 1 interrupt)
#         and brought online, so they are usable controllers; they bind to nvme.
# Writes shell variables to $MPW_HW_ENV (default /tmp/mpw-hw.env). Idempotent.

set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

say() { echo "[setup-hw] $*"; }
die() { echo "[setup-hw] error: $*" >&2; exit 1; }

wait_for() { # SECONDS CMD...: poll until CMD succeeds
	local t=$(( $1 * 10 ))
	shift
	while ! "$@" 2>/dev/null; do
		t=$((t - 1))
		[ $t -gt 0 ] || return 1
		sleep 0.1
	done
}

# --- igb -------------------------------------------------------------------------------
igb_pf="$(pci_find 8086 10c9 | head -1)"
[ -n "$igb_pf" ] || die "no igb PF (8086:10c9)"
[ "$(pci_driver "$igb_pf")" = igb ] || die "igb PF $igb_pf not bound to igb"
if [ "$(cat "/sys/bus/pci/devices/$igb_pf/sriov_numvfs")" != 2 ]; then
	say "igb PF $igb_pf: creating 2 VFs"
	echo 2 > "/sys/bus/pci/devices/$igb_pf/sriov_numvfs"
fi
igb_vfs=()
for i in 0 1; do
	igb_vfs+=("$(basename "$(readlink "/sys/bus/pci/devices/$igb_pf/virtfn$i")")")
done

# --- NVMe ------------------------------------------------------------------------------
nvme_pf="$(pci_find 1b36 0010 | while read -r d; do
	[ -e "/sys/bus/pci/devices/$d/sriov_totalvfs" ] && echo "$d"; done | head -1)"
[ -n "$nvme_pf" ] || die "no NVMe PF with SR-IOV (1b36:0010)"
pfs="/sys/bus/pci/devices/$nvme_pf"
wait_for 30 ls "$pfs/nvme/" >/dev/null || die "NVMe PF $nvme_pf has no controller"
nvme_ctrl="/dev/$(ls "$pfs/nvme/" | head -1)"
if [ "$(cat "$pfs/sriov_numvfs")" != 2 ]; then
	say "NVMe PF $nvme_pf ($nvme_ctrl): assigning flexible resources to 2 secondary controllers"
	# Secondary controller IDs, in VF order, from the primary's Secondary Controller List.
	# Plain output: "SCID : Secondary Controller Identifier : 0x0001", then "VFN ... : 0x0001".
	mapfile -t scids < <(nvme list-secondary "$nvme_ctrl" |
		awk '$1 == "SCID" { scid = $NF } $1 == "VFN" { print $NF, scid }' |
		while read -r vfn scid; do echo "$((vfn)) $((scid))"; done | sort -n | cut -d' ' -f2)
	[ "${#scids[@]}" -ge 2 ] || die "expected 2 secondary controllers, got ${#scids[@]}"
	echo 0 > "$pfs/sriov_drivers_autoprobe"
	for scid in "${scids[@]:0:2}"; do
		nvme virt-mgmt "$nvme_ctrl" -c "$scid" -r 0 -a 8 -n 2 >/dev/null # 2 VQ
		nvme virt-mgmt "$nvme_ctrl" -c "$scid" -r 1 -a 8 -n 1 >/dev/null # 1 VI
	done
	echo 2 > "$pfs/sriov_numvfs"
	for scid in "${scids[@]:0:2}"; do
		nvme virt-mgmt "$nvme_ctrl" -c "$scid" -a 9 >/dev/null # online
	done
	echo 1 > "$pfs/sriov_drivers_autoprobe"
	for i in 0 1; do
		vf="$(basename "$(readlink "$pfs/virtfn$i")")"
		echo "$vf" > /sys/bus/pci/drivers_probe
	done
fi
nvme_vfs=()
for i in 0 1; do
	nvme_vfs+=("$(basename "$(readlink "$pfs/virtfn$i")")")
done

# --- the rest --------------------------------------------------------------------------
virtio_net="$(pci_find 1af4 1041 | head -1)"
edu="$(pci_find 1234 11e8 | head -1)"
virtio_rng="$(pci_find 1af4 1005 | head -1)"

cat > "$MPW_HW_ENV" <<EOV
IGB_PF=$igb_pf
IGB_VFS=(${igb_vfs[*]})
NVME_PF=$nvme_pf
NVME_CTRL=$nvme_ctrl
NVME_VFS=(${nvme_vfs[*]})
VIRTIO_NET=$virtio_net
EDU=$edu
VIRTIO_RNG=$virtio_rng
EOV
say "igb PF $igb_pf VFs ${igb_vfs[*]}; NVMe PF $nvme_pf VFs ${nvme_vfs[*]};" \
	"virtio-net $virtio_net; edu $edu + virtio-rng $virtio_rng behind the bridge"
