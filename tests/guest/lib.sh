# SPDX-License-Identifier: GPL-2.0
#
# Shell helpers for guest-side tests and scripts. Source it.

# pci_find VENDOR DEVICE: BDFs of the functions with these IDs (hex without 0x), one a line.
# (Builtins only: every fork is slow in the TCG guest.)
pci_find() {
	local d v i
	for d in /sys/bus/pci/devices/*; do
		read -r v < "$d/vendor"
		read -r i < "$d/device"
		[ "$v" = "0x$1" ] && [ "$i" = "0x$2" ] && echo "${d##*/}"
	done
	return 0
}

# pci_group BDF: the IOMMU group number of a PCI function (empty if none).
pci_group() {
	local l
	l="$(readlink "/sys/bus/pci/devices/$1/iommu_group" 2>/dev/null)" || return 0
	basename "$l"
}

# pci_driver BDF: the name of the driver bound to a PCI function (empty if none).
pci_driver() {
	local l
	l="$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" || return 0
	basename "$l"
}

# group_members N: the devices of IOMMU group N, one a line.
group_members() {
	ls "/sys/kernel/iommu_groups/$1/devices/" 2>/dev/null
}

# Assertions: each prints what it expected and what it saw, and returns 1 on failure.
expect_eq() { # DESCRIPTION EXPECTED ACTUAL
	if [ "$2" != "$3" ]; then
		printf '# %s\n#   expected: %s\n#   saw:      %s\n' "$1" "$2" "$3"
		return 1
	fi
}

expect_ne() { # DESCRIPTION UNWANTED ACTUAL
	if [ "$2" = "$3" ]; then
		printf '# %s\n#   expected anything but: %s\n#   saw:      %s\n' "$1" "$2" "$3"
		return 1
	fi
}

expect_ge() { # DESCRIPTION MIN ACTUAL
	if ! [ "$3" -ge "$2" ] 2>/dev/null; then
		printf '# %s\n#   expected: >= %s\n#   saw:      %s\n' "$1" "$2" "$3"
		return 1
	fi
}

expect_file() { # DESCRIPTION PATH
	if [ ! -e "$2" ]; then
		printf '# %s\n#   expected: %s to exist\n#   saw:      it does not\n' "$1" "$2"
		return 1
	fi
}

expect_no_file() { # DESCRIPTION PATH
	if [ -e "$2" ]; then
		printf '# %s\n#   expected: %s to be gone\n#   saw:      it exists\n' "$1" "$2"
		return 1
	fi
}

# expect_ok DESCRIPTION CMD...: CMD must exit 0; its output is shown on failure.
expect_ok() {
	local desc="$1" o rc=0
	shift
	o="$("$@" 2>&1)" || rc=$?
	if [ $rc != 0 ]; then
		printf '# %s\n#   expected: `%s` to succeed\n#   saw:      exit %s: %s\n' \
			"$desc" "$*" "$rc" "$(echo "$o" | tail -3 | tr '\n' ' ')"
		return 1
	fi
}

# nvme_field FIELD TEXT: a field of nvme-cli's plain output ("field   : value").
nvme_field() {
	awk -v f="$1" '$1 == f && $2 == ":" { sub(/^[^:]*: */, ""); sub(/ *$/, ""); print; exit }' <<< "$2"
}

# kv KEY TEXT: the value of KEY in "key=value" lines.
kv() {
	sed -n "s/^$1=//p" <<< "$2" | head -1
}

# The hardware description written by setup-hw.sh.
MPW_HW_ENV="${MPW_HW_ENV:-/tmp/mpw-hw.env}"

# bind_to DRIVER BDF: rebind a PCI function to DRIVER through driver_override.
bind_to() {
	local drv="$1" bdf="$2" cur
	echo "$drv" > "/sys/bus/pci/devices/$bdf/driver_override"
	cur="$(pci_driver "$bdf")"
	[ -z "$cur" ] || echo "$bdf" > "/sys/bus/pci/drivers/$cur/unbind"
	echo "$bdf" > /sys/bus/pci/drivers_probe
	[ "$(pci_driver "$bdf")" = "$drv" ]
}

# unbind_override BDF: unbind a PCI function, clear its driver_override and reprobe it.
unbind_override() {
	local bdf="$1" cur
	cur="$(pci_driver "$bdf")"
	[ -z "$cur" ] || echo "$bdf" > "/sys/bus/pci/drivers/$cur/unbind"
	echo > "/sys/bus/pci/devices/$bdf/driver_override"
	echo "$bdf" > /sys/bus/pci/drivers_probe
}

# mdev_on BDF: wrap BDF with mpw_sample and create an mdev; prints its sysfs path.
mdev_on() {
	local t u
	bind_to mpw_sample "$1" || return 1
	t="/sys/class/mdev_bus/$1/mdev_supported_types/mpw_sample-vf"
	u="$(uuidgen)"
	echo "$u" > "$t/create" || return 1
	echo "/sys/bus/mdev/devices/$u"
}

# mdev_off SYSFS BDF: remove the mdev and give BDF back to its own driver.
mdev_off() {
	[ -z "$1" ] || echo 1 > "$1/remove"
	unbind_override "$2"
}

# dmesg_since MARK: kernel messages after the line containing MARK.
dmesg_since() {
	dmesg | sed -n "/$1/,\$p"
}

