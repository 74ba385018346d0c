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

test_vendor_modules_depend_on_the_library() {
	local ko n=0
	for ko in "$MPW_ROOT"/*.ko; do
		case "$(basename "$ko")" in mdev_pci_wrap.ko | mdev_pci_wrap_kunit.ko) continue ;; esac
		n=$((n + 1))
		expect_ok "$(basename "$ko") depends on the library" \
			grep -qw mdev_pci_wrap <<< "$(modinfo -F depends "$ko" | tr ',' ' ')" || return 1
		expect_file "$(basename "$ko" .ko) loaded" "/sys/module/$(basename "$ko" .ko)" || return 1
	done
	expect_ge "vendor modules built" 1 "$n"
}
