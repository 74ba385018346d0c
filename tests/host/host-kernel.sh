#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The host kernel of docs/user-guide.md ("The host kernel"): Debian's own configuration of the
# same kernel (from its linux-headers package, fetched by make deps) with kernel/host.config
# merged on top resolves, with the project's toolchain (clang 19, Debian's rustc-web, the
# project's bindgen), to a kernel that has everything the library needs: olddefconfig in a
# scratch build directory, then every option checked. Building that kernel takes hours on the
# project's machines and is not done here; the test kernel is built from the same source
# with the same toolchain. Its last line is the summary.

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/env.sh
. "$root/scripts/env.sh"
deb="$(ls "$MPW_CACHE"/dl/linux-headers-"${KERNEL_VERSION}"+deb13-amd64_*_amd64.deb 2>/dev/null | head -1)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

fail() {
	echo "FAIL: $*"
	exit 1
}

[ -n "$deb" ] || fail "no Debian linux-headers package in $MPW_CACHE/dl (make deps fetches it)"
dpkg-deb -x "$deb" "$scratch/deb"
debconf="$(find "$scratch/deb" -path '*/linux-headers-*/.config' | head -1)"
[ -f "$debconf" ] || fail "no .config in $deb"
# What Debian's build has of it, for the record.
for o in RUST IOMMUFD VFIO_DEVICE_CDEV VFIO_MDEV; do
	v="$(sed -n "s/^CONFIG_$o=\(.*\)/\1/p" "$debconf")"
	echo "Debian's config: CONFIG_$o=${v:-(not set)}"
done

o="$scratch/build"
mkdir -p "$o"
cp "$debconf" "$o/.config"
"$MPW_KSRC/scripts/kconfig/merge_config.sh" -m -O "$o" "$o/.config" "$root/kernel/host.config" \
	> "$scratch/merge.log" 2>&1 || { tail -20 "$scratch/merge.log"; fail "merge_config.sh"; }
make -s -C "$MPW_KSRC" O="$o" "${MPW_KMAKE_ARGS[@]}" olddefconfig > "$scratch/olddefconfig.log" 2>&1 ||
	{ tail -20 "$scratch/olddefconfig.log"; fail "olddefconfig"; }

# Every line of the fragment, and what the library and the user guide need besides.
need=()
while IFS= read -r line; do
	case "$line" in CONFIG_*=*) need+=("$line") ;; esac
done < "$root/kernel/host.config"
need+=(CONFIG_RUST=y CONFIG_CC_IS_CLANG=y CONFIG_PCI_IOV=y CONFIG_VFIO_GROUP=y
	CONFIG_VFIO_CONTAINER=y CONFIG_INTEL_IOMMU=y CONFIG_AMD_IOMMU=y CONFIG_IRQ_REMAP=y)
bad=()
for want in "${need[@]}"; do
	grep -qx "$want" "$o/.config" ||
		bad+=("$want (got: $(grep -E "^(# )?${want%%=*}[= ]" "$o/.config" || echo nothing))")
done
# VFIO, the mdev core and iommufd as modules or built in.
for sym in CONFIG_VFIO CONFIG_VFIO_MDEV CONFIG_VFIO_PCI CONFIG_IOMMUFD; do
	grep -qE "^$sym=(y|m)$" "$o/.config" || bad+=("$sym=y|m (got: $(grep -E "^(# )?$sym[= ]" "$o/.config" || echo nothing))")
done
[ ${#bad[@]} = 0 ] || fail "Debian's config + kernel/host.config: ${bad[*]}"
rel="$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"/\1/p' "$o/.config")"
echo "host-kernel: Debian's ${KERNEL_VERSION} config + kernel/host.config resolves with clang 19 and $rel: iommufd, the device cdev, Rust, mdev, VFIO group and container"
