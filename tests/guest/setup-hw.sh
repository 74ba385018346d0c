#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM: creates the SR-IOV VFs and records where everything is.
#   igb:  2 VFs (igb is bound to the PF at boot; the VFs bind to igbvf).
#   NVMe: 2 VFs, each given flexible resources with `nvme virt-mgmt` (2 queues, 1 interrupt)
#         and brought online, so they are usable controllers; they bind to nvme.
# Writes shell variables to $MPW_HW_ENV (default /tmp/mpw-hw.env). Idempotent.
#
# Every step that can block in the kernel (sriov_numvfs, each nvme-cli admin command, each
# drivers_probe write) runs under a time limit, MPW_SETUP_STEP_TIMEOUT seconds (default 60):
# a hung step fails the setup with the blocked tasks and the kernel log's tail, instead of
# hanging the run. NVMe admin commands go to a controller only once its state is `live`:
# opening it fails otherwise, and a command issued while it resets waits on its quiesced admin
# queue, where no time-out applies. No wait for an admin command is ever reported by the
# hung-task detector (see docs/test-vm.md).

set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

say() { echo "[setup-hw] $*"; }
die() { echo "[setup-hw] error: $*" >&2; exit 1; }

limit="${MPW_SETUP_STEP_TIMEOUT:-60}"

# step DESCRIPTION CMD...: one step under the time limit; a failed or hung step ends the setup.
# A slow step is reported: it is the early sign of a hang (e.g. an admin command that only
# completes when the driver's 60 s time-out polls for it).
step() {
	local desc="$1" rc=0 t0=$SECONDS
	shift
	run_limited "$limit" "step '$desc'" "$@" || rc=$?
	[ $rc = 0 ] || die "step '$desc' $([ $rc = 124 ] && echo "timed out after $limit s" ||
		echo "failed (status $rc)")"
	[ $((SECONDS - t0)) -lt 10 ] || say "slow step: '$desc' took $((SECONDS - t0)) s" >&2
}

write() { # VALUE FILE
	echo "$1" > "$2"
}

# ctrl_is_live CTRL_SYSFS_DIR
ctrl_is_live() {
	local s
	read -r s < "$1/state" && [ "$s" = live ]
}

# wait_live CTRL_SYSFS_DIR WHAT: a bounded wait for an NVMe controller to be `live`.
wait_live() {
	local s=absent
	wait_until "$limit" ctrl_is_live "$1" && return 0
	read -r s 2>/dev/null < "$1/state" || true
	die "$2 ($1) is not live after $limit s: state $s"
}

# first_ctrl PCI_SYSFS_DIR: the sysfs directory of the NVMe controller of a PCI function.
first_ctrl() {
	local c=("$1"/nvme/nvme*)
	[ -e "${c[0]}" ] && echo "${c[0]}"
}

# --- igb -------------------------------------------------------------------------------
igb_pf="$(pci_find 8086 10c9 | head -1)"
[ -n "$igb_pf" ] || die "no igb PF (8086:10c9)"
[ "$(pci_driver "$igb_pf")" = igb ] || die "igb PF $igb_pf not bound to igb"
if [ "$(< "/sys/bus/pci/devices/$igb_pf/sriov_numvfs")" != 2 ]; then
	say "igb PF $igb_pf: creating 2 VFs"
	step "echo 2 > $igb_pf/sriov_numvfs" write 2 "/sys/bus/pci/devices/$igb_pf/sriov_numvfs"
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
wait_until "$limit" first_ctrl "$pfs" >/dev/null || die "NVMe PF $nvme_pf has no controller"
pf_ctrl="$(first_ctrl "$pfs")"
nvme_ctrl="/dev/${pf_ctrl##*/}"
# pf_admin DESCRIPTION NVME_ARGS...: an nvme-cli admin command to the PF, once it is live.
pf_admin() {
	local desc="$1"
	shift
	wait_live "$pf_ctrl" "NVMe PF controller"
	step "$desc" nvme "$@"
}
if [ "$(< "$pfs/sriov_numvfs")" != 2 ]; then
	say "NVMe PF $nvme_pf ($nvme_ctrl): assigning flexible resources to 2 secondary controllers"
	# Secondary controller IDs, in VF order, from the primary's Secondary Controller List.
	# Plain output: "SCID : Secondary Controller Identifier : 0x0001", then "VFN ... : 0x0001".
	seclist="$(mktemp)"
	pf_admin "nvme list-secondary $nvme_ctrl" list-secondary "$nvme_ctrl" > "$seclist"
	mapfile -t scids < <(
		awk '$1 == "SCID" { scid = $NF } $1 == "VFN" { print $NF, scid }' "$seclist" |
		while read -r vfn scid; do echo "$((vfn)) $((scid))"; done | sort -n | cut -d' ' -f2)
	rm -f "$seclist"
	[ "${#scids[@]}" -ge 2 ] || die "expected 2 secondary controllers, got ${#scids[@]}"
	echo 0 > "$pfs/sriov_drivers_autoprobe"
	for scid in "${scids[@]:0:2}"; do
		pf_admin "nvme virt-mgmt -c $scid: 2 VQ" \
			virt-mgmt "$nvme_ctrl" -c "$scid" -r 0 -a 8 -n 2 >/dev/null
		pf_admin "nvme virt-mgmt -c $scid: 1 VI" \
			virt-mgmt "$nvme_ctrl" -c "$scid" -r 1 -a 8 -n 1 >/dev/null
	done
	wait_live "$pf_ctrl" "NVMe PF controller"
	step "echo 2 > $nvme_pf/sriov_numvfs" write 2 "$pfs/sriov_numvfs"
	for scid in "${scids[@]:0:2}"; do
		pf_admin "nvme virt-mgmt -c $scid: online" \
			virt-mgmt "$nvme_ctrl" -c "$scid" -a 9 >/dev/null
	done
	echo 1 > "$pfs/sriov_drivers_autoprobe"
	for i in 0 1; do
		vf="$(basename "$(readlink "$pfs/virtfn$i")")"
		step "echo $vf > drivers_probe" write "$vf" /sys/bus/pci/drivers_probe
	done
fi
nvme_vfs=()
for i in 0 1; do
	nvme_vfs+=("$(basename "$(readlink "$pfs/virtfn$i")")")
	# The VF's probe ran in the drivers_probe write: it must have left a live controller.
	# (Unless a previous user of this VM rebound the VF elsewhere.)
	[ -z "$(pci_driver "${nvme_vfs[$i]}")" ] || [ "$(pci_driver "${nvme_vfs[$i]}")" = nvme ] ||
		continue
	vf_ctrl="$(first_ctrl "/sys/bus/pci/devices/${nvme_vfs[$i]}")" ||
		die "NVMe VF ${nvme_vfs[$i]} has no controller (driver: $(pci_driver "${nvme_vfs[$i]}"))"
	wait_live "$vf_ctrl" "NVMe VF ${nvme_vfs[$i]} controller"
done

# --- the rest --------------------------------------------------------------------------
virtio_net="$(pci_find 1af4 1041 | head -1)"
edu="$(pci_find 1234 11e8 | head -1)"
virtio_rng="$(pci_find 1af4 1005 | head -1)"
e1000e="$(pci_find 8086 10d3 | head -1)"

cat > "$MPW_HW_ENV" <<EOV
IGB_PF=$igb_pf
IGB_VFS=(${igb_vfs[*]})
NVME_PF=$nvme_pf
NVME_CTRL=$nvme_ctrl
NVME_VFS=(${nvme_vfs[*]})
VIRTIO_NET=$virtio_net
EDU=$edu
VIRTIO_RNG=$virtio_rng
E1000E=$e1000e
EOV
say "igb PF $igb_pf VFs ${igb_vfs[*]}; NVMe PF $nvme_pf VFs ${nvme_vfs[*]};" \
	"virtio-net $virtio_net; edu $edu + virtio-rng $virtio_rng behind the bridge"
