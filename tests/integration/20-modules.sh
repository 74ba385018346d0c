# SPDX-License-Identifier: GPL-2.0
#
# The project's modules load and unload cleanly.

test_library_module_loaded() {
	expect_file "library module loaded" /sys/module/mdev_pci_wrap || return 1
	expect_eq "library module state" live "$(cat /sys/module/mdev_pci_wrap/initstate)" || return 1
	expect_ok "library logged its load" grep -q "mdev_pci_wrap: library loaded" <(dmesg)
}

test_library_exports_its_rust_symbols_to_dependents() {
	# The KUnit module calls non-generic library functions: they must be exported.
	local n
	n="$(awk -F'\t' '$2 ~ /^_R/ && $3 == "mdev_pci_wrap" && $4 == "EXPORT_SYMBOL_GPL"' \
		"$MPW_ROOT/Module.symvers" | wc -l)"
	expect_ge "exported Rust symbols of mdev_pci_wrap in Module.symvers" 1 "$n" || return 1
	expect_eq "KUnit module depends on the library" mdev_pci_wrap \
		"$(modinfo -F depends "$MPW_ROOT/mdev_pci_wrap_kunit.ko")"
}
