#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Configure and build the test kernel into the cache (outside the repository), keyed by the
# config fragment, the pinned versions and this script. A finished build is reused as is; an
# interrupted one is resumed by make. Prints progress while it builds.

set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/env.sh
. "$here/env.sh"

say() { printf '[kernel] %s\n' "$*" >&2; }

if [ -f "$MPW_KBUILD/.mpw-built" ]; then
	say "cached test kernel: $MPW_KBUILD"
	exit 0
fi

mkdir -p "$MPW_KBUILD"
log="$MPW_KBUILD/build.log"
start=$(date +%s)

if [ ! -f "$MPW_KBUILD/.mpw-configured" ]; then
	say "configuring $KERNEL_VERSION (virtme-ng defconfig + kernel/mdev_pci_wrap.config) in $MPW_KBUILD"
	# virtme-ng's own items are appended after any --custom snippet, so merge ours last.
	{
		(cd "$MPW_KSRC" && virtme-configkernel --defconfig O="$MPW_KBUILD" "${MPW_KMAKE_ARGS[@]}") &&
		"$MPW_KSRC/scripts/kconfig/merge_config.sh" -m -O "$MPW_KBUILD" \
			"$MPW_KBUILD/.config" "$MPW_FRAGMENT" &&
		make -C "$MPW_KSRC" O="$MPW_KBUILD" "${MPW_KMAKE_ARGS[@]}" olddefconfig
	} > "$MPW_KBUILD/config.log" 2>&1 || { tail -30 "$MPW_KBUILD/config.log"; exit 1; }
	# merge_config silently drops items whose dependencies are unmet: check every one.
	bad=0
	while IFS= read -r line; do
		case "$line" in CONFIG_*=*) ;; *) continue ;; esac
		sym="${line%%=*}" want="${line#*=}"
		if [ "$want" = n ]; then
			if grep -q "^$sym=" "$MPW_KBUILD/.config"; then
				say "config: $sym should be unset, got $(grep "^$sym=" "$MPW_KBUILD/.config")"
				bad=1
			fi
		elif ! grep -qx "$sym=$want" "$MPW_KBUILD/.config"; then
			say "config: wanted $line, got $(grep -E "^(# )?$sym[= ]" "$MPW_KBUILD/.config" || echo 'nothing')"
			bad=1
		fi
	done < "$MPW_FRAGMENT"
	[ $bad = 0 ] || { say "config fragment not applied; fix kernel/mdev_pci_wrap.config"; exit 1; }
	touch "$MPW_KBUILD/.mpw-configured"
fi

say "building bzImage and modules (about 19 minutes cold on 2 cores); log: $log"
jobs=$(( $(nproc) + 1 ))
# A parent `make -s` must not silence this build: its output is the progress report.
MAKEFLAGS= MAKELEVEL= make -C "$MPW_KSRC" O="$MPW_KBUILD" "${MPW_KMAKE_ARGS[@]}" -j"$jobs" \
	bzImage modules > "$log" 2>&1 &
mk=$!
while kill -0 $mk 2>/dev/null; do
	sleep 30
	kill -0 $mk 2>/dev/null || break
	n=$(grep -cE '^  (CC|RUSTC|AS|LD)' "$log" || true)
	say "$(( $(date +%s) - start ))s: $n objects built, last: $(tail -1 "$log" | cut -c1-70)"
done
if ! wait $mk; then
	grep -E 'error|Error' "$log" | head -20 >&2
	say "kernel build failed; see $log"
	exit 1
fi
# vng copies modules out of the build tree into .virtme_mods when it boots.
say "built in $(( $(date +%s) - start ))s"
touch "$MPW_KBUILD/.mpw-built"
