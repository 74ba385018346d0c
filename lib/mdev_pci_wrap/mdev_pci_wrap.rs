// SPDX-License-Identifier: GPL-2.0

//! mdev_pci_wrap: PCI SR-IOV virtual functions as mediated devices.
//!
//! This crate is the reusable library that vendor parent drivers (`vendors/`) link against:
//! the generic logic of a function wrapped as an mdev ([`vf`]), its virtual config space
//! ([`config`]), which BAR parts userspace may map ([`bar`]), its interrupts as VFIO
//! presents them ([`interrupts`]), the migration stream format ([`stream`]) and the dirty-page
//! tracker behind DMA logging ([`dirty`]). It has no `unsafe` code: it builds on the safe
//! abstractions of the `mpw_kernel` crate, which it re-exports. Both crates are linked into
//! one module, `mdev_pci_wrap.ko`, which the vendor modules depend on.
//!
//! See `docs/architecture.md`.

#![forbid(unsafe_code)]

pub mod bar;
pub mod config;
pub mod dirty;
pub mod interrupts;
pub mod stream;
pub mod vendor;
pub mod vf;

pub use mpw_kernel::{
    bindings,
    bound_function,
    crc,
    eventfd,
    iommufd,
    irq,
    layout,
    mdev,
    pci_driver,
    pci_io,
    uapi,
    user_msg_allowed,
    vfio,
    virqfd, //
};

/// `dev_warn!`, rate-limited: for every message userspace can trigger.
#[macro_export]
macro_rules! user_warn {
    ($($arg:tt)*) => {
        if $crate::user_msg_allowed() {
            ::kernel::dev_warn!($($arg)*);
        }
    };
}

/// `dev_dbg!`, rate-limited: for every message userspace can trigger.
#[macro_export]
macro_rules! user_dbg {
    ($($arg:tt)*) => {
        if $crate::user_msg_allowed() {
            ::kernel::dev_dbg!($($arg)*);
        }
    };
}

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
