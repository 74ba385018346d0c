// SPDX-License-Identifier: GPL-2.0

//! `mpw-vfio-client`: a small real VFIO client for the mdev_pci_wrap integration tests.
//!
//! It prints what it finds as `key=value` lines so that shell tests can compare them with
//! sysfs. Errors go to stderr with the failing operation and errno, and exit with status 1.
//!
//! Commands:
//!   group-open <group> <device>   open <device> through the legacy type1 container path and
//!                                 print its device info and config-space IDs

mod vfio;

use std::process::ExitCode;

fn group_open(group: u32, device: &str) -> vfio::Result<()> {
    let c = vfio::Container::open(group)?;
    println!("group={group}");
    println!("group_viable={}", u32::from(c.group_flags & vfio::VFIO_GROUP_FLAGS_VIABLE != 0));
    let dev = c.device(device)?;
    let info = dev.info()?;
    println!("device_flags={:#x}", info.flags);
    println!("device_is_pci={}", u32::from(info.flags & vfio::VFIO_DEVICE_FLAGS_PCI != 0));
    println!("num_regions={}", info.num_regions);
    println!("num_irqs={}", info.num_irqs);
    let mut id = [0u8; 4];
    dev.read_region(vfio::VFIO_PCI_CONFIG_REGION_INDEX, 0, &mut id)?;
    println!("config_vendor={:#06x}", u16::from_le_bytes([id[0], id[1]]));
    println!("config_device={:#06x}", u16::from_le_bytes([id[2], id[3]]));
    Ok(())
}

fn usage() -> ExitCode {
    eprintln!("usage: mpw-vfio-client group-open <group> <device>");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["group-open", group, device] => match group.parse() {
            Ok(g) => group_open(g, device),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpw-vfio-client: {e}");
            ExitCode::FAILURE
        }
    }
}
