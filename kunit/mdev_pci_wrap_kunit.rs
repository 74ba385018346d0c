// SPDX-License-Identifier: GPL-2.0

//! KUnit suites for the mdev_pci_wrap library.
//!
//! All suites live in this one module so that loading it yields one KTAP document. The suites
//! run when the module is loaded (`insmod mdev_pci_wrap_kunit.ko`), after `mdev_pci_wrap.ko`.

use kernel::prelude::*;

mod bar;
mod config;
mod dirty;
mod layout;
mod stream;

module! {
    type: MdevPciWrapKunit,
    name: "mdev_pci_wrap_kunit",
    authors: ["mdev_pci_wrap developers"],
    description: "KUnit tests for mdev_pci_wrap",
    license: "GPL",
}

/// The test module: the suites are registered through `.kunit_test_suites`.
struct MdevPciWrapKunit;

impl kernel::Module for MdevPciWrapKunit {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(MdevPciWrapKunit)
    }
}
