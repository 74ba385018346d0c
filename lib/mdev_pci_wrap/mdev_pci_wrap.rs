// SPDX-License-Identifier: GPL-2.0

//! mdev_pci_wrap: PCI SR-IOV virtual functions as mediated devices.
//!
//! This crate is the reusable library that vendor parent drivers (`vendors/`) link against.
//! It is built as its own module, `mdev_pci_wrap.ko`, which the vendor modules depend on.
//!
//! Layers, bottom to top:
//! - [`bindings`]: raw bindings for the vfio/mdev/iommufd headers (generated at build time)
//!   and C helpers for their static inline functions and macros;
//! - safe abstractions over the C vfio/mdev APIs;
//! - the generic VF-as-mdev logic a vendor driver configures with a few hooks.
//!
//! See `docs/architecture.md`.

pub mod bar;
pub mod bindings;
pub mod config;
pub mod eventfd;
pub mod interrupts;
pub mod iommufd;
pub mod irq;
pub mod layout;
pub mod mdev;
pub mod pci_driver;
pub mod pci_io;
pub mod uapi;
pub mod vf;
pub mod vfio;

use kernel::prelude::*;

/// Declares the module of a vendor parent driver: a [`vf::VfDriver`] and nothing else.
///
/// Registers the vendor's mdev driver, then its VF PCI driver; module exit undoes both in
/// the opposite order (unbinding the VFs removes their mdevs first).
///
/// ```ignore
/// mdev_pci_wrap::module_vf_driver! {
///     type: MyVfs,
///     name: "my_vfs",
///     authors: ["..."],
///     description: "...",
///     license: "GPL",
/// }
/// ```
#[macro_export]
macro_rules! module_vf_driver {
    (type: $type:ty, name: $name:literal, $($rest:tt)*) => {
        static MPW_MDEV_DRIVER: $crate::mdev::DriverRegistration<$crate::vf::MdevDriver<$type>> =
            $crate::mdev::DriverRegistration::new();

        impl $crate::vf::VfModule for $type {
            fn mdev_driver()
                -> &'static $crate::mdev::DriverRegistration<$crate::vf::MdevDriver<$type>>
            {
                &MPW_MDEV_DRIVER
            }
        }

        /// The vendor module: its VF PCI driver and its mdev driver.
        #[::kernel::prelude::pin_data]
        struct MpwVfModule {
            // Dropped first: unbinding the VFs unregisters their parents and mdevs.
            #[pin]
            _pci: ::kernel::driver::Registration<
                $crate::pci_driver::Adapter<$crate::vf::VfPciDriver<$type>>,
            >,
            _mdev: $crate::mdev::DriverGuard<$crate::vf::MdevDriver<$type>>,
        }

        impl ::kernel::InPlaceModule for MpwVfModule {
            fn init(
                module: &'static ::kernel::ThisModule,
            ) -> impl ::pin_init::PinInit<Self, ::kernel::error::Error> {
                let name = <$type as $crate::vf::VfDriver>::NAME;
                ::kernel::try_pin_init!(Self {
                    _mdev: MPW_MDEV_DRIVER.register(name, module)?,
                    _pci <- ::kernel::driver::Registration::new(name, module),
                })
            }
        }

        ::kernel::prelude::module! {
            type: MpwVfModule,
            name: $name,
            $($rest)*
        }
    };
}

module! {
    type: MdevPciWrap,
    name: "mdev_pci_wrap",
    authors: ["mdev_pci_wrap developers"],
    description: "Library: PCI SR-IOV virtual functions as mediated devices",
    license: "GPL",
    imports_ns: ["IOMMUFD"],
}

/// The library module: it holds no state of its own; vendor modules register their drivers.
pub struct MdevPciWrap;

impl kernel::Module for MdevPciWrap {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("library loaded\n");
        Ok(MdevPciWrap)
    }
}
