// SPDX-License-Identifier: GPL-2.0

//! mpw_sample: the sample parent driver of mdev_pci_wrap.
//!
//! It has no device-specific code: it wraps whichever PCI function is handed to it through
//! `driver_override`, and offers one mdev type, the whole VF:
//!
//! ```text
//! echo mpw_sample > /sys/bus/pci/devices/$VF/driver_override
//! echo $VF > /sys/bus/pci/drivers/$(basename $(readlink /sys/bus/pci/devices/$VF/driver))/unbind
//! echo $VF > /sys/bus/pci/drivers_probe
//! echo $(uuidgen) > /sys/class/mdev_bus/$VF/mdev_supported_types/mpw_sample-vf/create
//! ```

#![forbid(unsafe_code)]

use kernel::{
    c_str,
    prelude::*, //
};
use mdev_pci_wrap::{
    mdev::TypeInfo,
    pci_driver::IdTable,
    vf::VfDriver, //
};

/// Any VF, as it is.
struct Sample;

impl VfDriver for Sample {
    const NAME: &'static CStr = c_str!("mpw_sample");
    const ID_TABLE: IdTable = IdTable::OVERRIDE_ONLY;
    const TYPES: &'static [TypeInfo] = &[TypeInfo {
        sysfs_name: c_str!("vf"),
        pretty_name: c_str!("Whole VF, passed through"),
        description: c_str!("The whole function: BARs mapped, DMA through the user's iommufd IOAS"),
    }];
    type State = ();
}

mdev_pci_wrap::module_vf_driver! {
    type: Sample,
    name: "mpw_sample",
    authors: ["mdev_pci_wrap developers"],
    description: "Sample mdev_pci_wrap parent: any VF given by driver_override, as an mdev",
    license: "GPL",
}
