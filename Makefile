# SPDX-License-Identifier: GPL-2.0
#
# mdev_pci_wrap top-level Makefile. The kernel build itself is driven by ./Kbuild.
#
#   make              build the modules against $(KDIR) (default: the cached test kernel)
#   make test         install deps, build kernel + modules, run every test in the test VM
#   make kunit        build the modules, run only the KUnit suites in the test VM
#   make stress       lifecycle races (1000 rounds) and the fuzzer (1,000,000 operations)
#   make bench        the same VF through vfio-pci and as an mdev: benchmarks, docs/benchmarks.md
#   make demo         create VFs and an mdev in the test VM and show them
#   make vm-run CMD='...'   run a command in the test VM (modules built, not loaded)
#   make install      install the built modules into $(INSTALL_MOD_PATH)/lib/modules/<KDIR's
#                     release>/extra and run depmod: `modprobe mpw_sample` then loads the
#                     library and the mdev core too (MPW_TESTS=n at build time leaves the
#                     KUnit and test-vendor modules out)
#   make uninstall    remove them again (and run depmod)
#   make fmt | fmt-check | clippy | clean
#
# Everything that is downloaded or built outside this tree goes to $(MPW_CACHE)
# (default ~/.cache/mdev_pci_wrap); see scripts/versions.sh.

SHELL := /bin/bash
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))

# The default kernel is the cached test kernel; its path depends on the config fragment hash.
ifeq ($(origin KDIR),undefined)
KDIR = $(shell bash $(ROOT)/scripts/env.sh --print-kdir)
KDIR_IS_CACHED := 1
endif

# The toolchain the kernel was built with (a Rust module needs that kernel's rustc): the test
# kernel's by default; another kernel's (DKMS, a distribution's) through these variables.
# bindgen is the project's (make deps), or the one on PATH where that is not installed.
MPW_LLVM ?= -19
MPW_RUSTC ?= /usr/bin/rustc
MPW_BINDGEN_CACHED = $(shell bash $(ROOT)/scripts/env.sh --print-bindgen)
MPW_BINDGEN ?= $(if $(wildcard $(MPW_BINDGEN_CACHED)),$(MPW_BINDGEN_CACHED),bindgen)
# (CC and LD spelled out too: DKMS adds CC=clang LD=ld.lld, unsuffixed, for a clang-built
# kernel, and those would override LLVM's choice.)
MPW_LLVM_SUFFIX = $(if $(filter 1,$(MPW_LLVM)),,$(MPW_LLVM))
KMAKE_ARGS = LLVM=$(MPW_LLVM) CC=clang$(MPW_LLVM_SUFFIX) LD=ld.lld$(MPW_LLVM_SUFFIX) \
	RUSTC=$(MPW_RUSTC) HOSTRUSTC=$(MPW_RUSTC) BINDGEN=$(MPW_BINDGEN) \
	KCFLAGS=-Werror KRUSTFLAGS=-Dwarnings
KMAKE = $(MAKE) -C $(KDIR) M=$(ROOT) $(KMAKE_ARGS)

# Installed modules go where distributions put out-of-tree ones (DKMS too: dkms.conf).
KRELEASE = $(shell cat $(KDIR)/include/config/kernel.release 2>/dev/null)
MPW_MODDIR = $(INSTALL_MOD_PATH)/lib/modules/$(KRELEASE)/extra
# Every module the project builds or ever built, for `make uninstall`.
MPW_MODULES = mdev_pci_wrap mdev_pci_wrap_kunit mpw_test_vendor \
	$(notdir $(patsubst %/,%,$(wildcard $(ROOT)/vendors/*/)))

# rustfmt follows `mod` declarations, so it is given the crate roots only.
RS_CRATES = $(ROOT)/lib/mpw_kernel/mpw_kernel.rs $(ROOT)/lib/mdev_pci_wrap/mdev_pci_wrap.rs \
	$(ROOT)/kunit/mdev_pci_wrap_kunit.rs $(ROOT)/tests/vendor/mpw_test_vendor.rs \
	$(foreach d,$(wildcard $(ROOT)/vendors/*/),$(wildcard $(d)$(notdir $(d:/=)).rs))
RS_FILES = $(shell find $(ROOT)/lib $(ROOT)/vendors $(ROOT)/kunit $(ROOT)/tests/vendor -name '*.rs' \
	! -name '*generated*' 2>/dev/null)
RUSTFMT = /usr/bin/rustfmt --edition 2021 --config newline_style=Unix

.PHONY: all modules install uninstall client deps kernel test kunit stress bench demo vm-run fmt fmt-check \
	clippy clean help

all: modules

help:
	@sed -n '3,21p' $(ROOT)/Makefile | sed 's/^# \{0,1\}//'

deps:
	@bash $(ROOT)/scripts/install-deps.sh

kernel: deps
	@bash $(ROOT)/scripts/build-kernel.sh

# Build the cached kernel first only when it is the one we build against.
modules: $(if $(KDIR_IS_CACHED),kernel)
	+$(KMAKE) modules

# What `make` built (modules.order), with the kernel's own modules_install: signed, stripped
# or compressed as that kernel's configuration says, then depmod.
# (No toolchain arguments: installing compiles nothing, and the kernel's Makefile would run
# the compiler for its version text.)
install:
	@test -s $(ROOT)/modules.order || { echo "install: nothing built: run make first" >&2; exit 1; }
	+$(MAKE) -C $(KDIR) M=$(ROOT) INSTALL_MOD_DIR=extra modules_install

uninstall:
	@test -n "$(KRELEASE)" || { echo "uninstall: no kernel release in $(KDIR)" >&2; exit 1; }
	rm -f $(foreach m,$(MPW_MODULES),$(MPW_MODDIR)/$(m).ko $(MPW_MODDIR)/$(m).ko.*)
	depmod $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) $(KRELEASE)

# The kernel's .rustfmt.toml: edition 2021, Unix newlines, everything else default.
fmt:
	$(RUSTFMT) $(RS_CRATES)

fmt-check:
	@$(RUSTFMT) --check $(RS_CRATES) && \
	echo "fmt-check: $(words $(RS_FILES)) files, 0 findings"

# Clippy only looks at what it compiles, so force the Rust objects to be rebuilt.
clippy: $(if $(KDIR_IS_CACHED),kernel)
	@find $(ROOT)/lib $(ROOT)/vendors $(ROOT)/kunit -name '*.o' -delete 2>/dev/null; \
	$(KMAKE) CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver modules 2>&1 | tee $(ROOT)/.clippy.log; \
	test $${PIPESTATUS[0]} = 0 || exit 1; \
	n=$$(grep -cE '^(warning|error)' $(ROOT)/.clippy.log); \
	echo "clippy: $$n findings"; test $$n = 0

# The userspace VFIO client the tests drive the devices with.
client:
	cd $(ROOT)/tests/client && cargo build --release --locked --quiet

test:
	@bash $(ROOT)/tests/run.sh

kunit:
	@bash $(ROOT)/scripts/kunit.sh

stress: kernel
	@bash $(ROOT)/scripts/stress.sh

bench: kernel
	@bash $(ROOT)/scripts/bench.sh

demo:
	@bash $(ROOT)/scripts/demo.sh

vm-run:
	@bash $(ROOT)/scripts/vm-run.sh $(CMD)

clean:
	@if [ -d "$(KDIR)" ]; then $(KMAKE) clean; fi
	rm -rf $(ROOT)/out $(ROOT)/.clippy.log
	cd $(ROOT)/tests/client && cargo clean 2>/dev/null || true
