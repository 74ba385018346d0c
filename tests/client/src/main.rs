// SPDX-License-Identifier: GPL-2.0

//! `mpw-vfio-client`: a small real VFIO client for the mdev_pci_wrap integration tests.
//!
//! It prints what it finds as `key=value` lines so that shell tests can compare them with
//! sysfs. Errors go to stderr with the failing operation and errno, and exit with status 1.
//!
//! Commands:
//!   group-open <group> <device> [OP]...
//!       open <device> through the legacy type1 container path; print its device info, every
//!       PCI region's info and the config-space IDs; then run the OPs in order:
//!         read:<region>:<offset>:<len>           print `read_<region>_<offset>=<hex>`
//!         write:<region>:<offset>:<len>:<value>  write <value> (little endian)
//!       (len 1, 2, 4 or 8; numbers decimal or 0x-hex)

mod vfio;

use std::process::ExitCode;

/// A region access requested on the command line.
struct Op {
    region: u32,
    offset: u64,
    len: usize,
    /// `Some(value)` for a write.
    write: Option<u64>,
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_op(s: &str) -> Option<Op> {
    let (is_write, rest) = match s.split_once(':')? {
        ("read", rest) => (false, rest),
        ("write", rest) => (true, rest),
        _ => return None,
    };
    let mut it = rest.split(':');
    let region = u32::try_from(parse_num(it.next()?)?).ok()?;
    let offset = parse_num(it.next()?)?;
    let len = usize::try_from(parse_num(it.next()?)?).ok()?;
    let write = if is_write { Some(parse_num(it.next()?)?) } else { None };
    if it.next().is_some() || !matches!(len, 1 | 2 | 4 | 8) {
        return None;
    }
    Some(Op { region, offset, len, write })
}

fn group_open(group: u32, device: &str, ops: &[Op]) -> vfio::Result<()> {
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
    for index in 0..info.num_regions.min(vfio::VFIO_PCI_NUM_REGIONS) {
        let r = dev.region_info(index)?;
        println!("region{index}_size={:#x}", r.size);
        println!("region{index}_flags={:#x}", r.flags);
    }
    for op in ops {
        match op.write {
            Some(v) => dev.write_region(op.region, op.offset, &v.to_le_bytes()[..op.len])?,
            None => {
                let mut buf = [0u8; 8];
                dev.read_region(op.region, op.offset, &mut buf[..op.len])?;
                println!("read_{}_{:#x}={:#x}", op.region, op.offset, u64::from_le_bytes(buf));
            }
        }
    }
    Ok(())
}

fn usage() -> ExitCode {
    eprintln!("usage: mpw-vfio-client group-open <group> <device> [read:R:OFF:LEN | write:R:OFF:LEN:VAL]...");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["group-open", group, device, rest @ ..] => {
            let Ok(g) = group.parse() else { return usage() };
            let Some(ops) = rest.iter().map(|s| parse_op(s)).collect::<Option<Vec<_>>>() else {
                return usage();
            };
            group_open(g, device, &ops)
        }
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
