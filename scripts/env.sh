# SPDX-License-Identifier: GPL-2.0
# Common environment for the project's scripts: toolchain, cache paths, kernel cache key.
# Source it; it defines no side effects beyond variables and PATH.

_mpw_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MPW_ROOT="$(cd "$_mpw_here/.." && pwd)"
# shellcheck source=scripts/versions.sh
. "$_mpw_here/versions.sh"

export LIBCLANG_PATH=/usr/lib/llvm-19/lib
# rustup's rustc (first on PATH) has no rust-src and a different version: never use it.
MPW_KMAKE_ARGS=(LLVM=-19 RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc
		RUSTFMT=/usr/bin/rustfmt BINDGEN="$MPW_TOOLS/bin/bindgen")
export PATH="$MPW_VENV/bin:$MPW_TOOLS/bin:$PATH"

MPW_FRAGMENT="$MPW_ROOT/kernel/mdev_pci_wrap.config"
# The cache key covers everything that changes the kernel binary: the fragment, the kernel
# version and toolchain pins, and KERNEL_RECIPE (bump it when build-kernel.sh changes how the
# kernel is configured or built).
MPW_KEY="$(cat "$MPW_FRAGMENT" "$_mpw_here/versions.sh" | sha256sum | cut -c1-12)"
MPW_KBUILD="${MPW_KBUILD:-$MPW_CACHE/kernel-${KERNEL_VERSION}-${MPW_KEY}}"
export MPW_ROOT MPW_KBUILD

# `bash scripts/env.sh --print-kdir` is how the Makefile learns the cached kernel's path.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	case "${1:-}" in
	--print-kdir) echo "$MPW_KBUILD" ;;
	--print-bindgen) echo "$MPW_TOOLS/bin/bindgen" ;;
	--print-ksrc) echo "$MPW_KSRC" ;;
	*) echo "usage: $0 --print-kdir|--print-bindgen|--print-ksrc" >&2; exit 2 ;;
	esac
fi
