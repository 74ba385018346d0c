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
//!         mmap:<region>:<offset>:<len>[:<at>]    mmap <len> bytes there and read 4 bytes at
//!                                                <at> in the mapping; print
//!                                                `mmap_<region>_<offset + at>=<hex>` or
//!                                                `mmap_<region>_<offset + at>_error=<error>`
//!       (len 1, 2, 4 or 8; numbers decimal or 0x-hex)
//!   cdev-open <sysfs device dir> [OP]...
//!       the same through the device cdev bound to a new iommufd context and attached to its
//!       IOAS (what QEMU does with `-object iommufd`)
//!   nvme-identify <sysfs device dir>
//!       as cdev-open, then drive an NVMe controller: admin queues in IOAS-mapped memory,
//!       Identify Controller by DMA (print `identify_*`); then unmap the data page's IOVA,
//!       issue it again and print what happened (`after_unmap_*`)
//!   hold <sysfs device dir> <seconds>
//!       open the device (cdev + iommufd), print `held`, keep it open, then close it
//!   bad-args <sysfs device dir>
//!       malformed ioctls and accesses; prints `<case>=<errno name>` for each
//!   same-group <sysfs dir A> <sysfs dir B>
//!       bind A and B to one iommufd context (`same_ctx=`), then A and B to two contexts
//!       (`other_ctx=`): `ok` or the error

mod nvme;
mod vfio;

use std::process::ExitCode;
use std::time::Duration;

/// A region access requested on the command line.
struct Op {
    region: u32,
    offset: u64,
    len: usize,
    /// `Some(value)` for a write.
    write: Option<u64>,
    /// An mmap of `len` bytes rather than a read, read at this offset in the mapping.
    mmap: Option<u64>,
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
        ("mmap", rest) => {
            let mut it = rest.split(':');
            let region = u32::try_from(parse_num(it.next()?)?).ok()?;
            let offset = parse_num(it.next()?)?;
            let len = usize::try_from(parse_num(it.next()?)?).ok()?;
            let at = match it.next() {
                Some(a) => parse_num(a)?,
                None => 0,
            };
            if at + 4 > len as u64 {
                return None;
            }
            return Some(Op { region, offset, len, write: None, mmap: Some(at) });
        }
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
    Some(Op { region, offset, len, write, mmap: None })
}

fn group_open(group: u32, device: &str, ops: &[Op]) -> vfio::Result<()> {
    let c = vfio::Container::open(group)?;
    println!("group={group}");
    println!("group_viable={}", u32::from(c.group_flags & vfio::VFIO_GROUP_FLAGS_VIABLE != 0));
    let dev = c.device(device)?;
    show_device(&dev, ops)
}

/// Opens the cdev of `sysfs` bound to a new iommufd context and attached to its IOAS.
fn cdev_attach(sysfs: &str) -> vfio::Result<(vfio::Iommufd, vfio::Device)> {
    let iommufd = vfio::Iommufd::open()?;
    let dev = vfio::cdev_bind(&vfio::cdev_path(sysfs)?, &iommufd)?;
    dev.attach(&iommufd)?;
    Ok((iommufd, dev))
}

fn cdev_open(sysfs: &str, ops: &[Op]) -> vfio::Result<()> {
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    println!("cdev={}", vfio::cdev_path(sysfs)?);
    show_device(&dev, ops)
}

fn nvme_identify(sysfs: &str) -> vfio::Result<()> {
    let (iommufd, dev) = cdev_attach(sysfs)?;
    let mut ctrl = nvme::Nvme::init(&dev, &iommufd)?;
    let c = ctrl.identify_controller(1, Duration::from_secs(30))?;
    println!("identify_cid={}", c.cid);
    println!("identify_status={:#x}", c.status);
    let id = ctrl.data.bytes(0, 64);
    println!("identify_vid={:#06x}", u16::from_le_bytes([id[0], id[1]]));
    println!("identify_sn={}", nvme::ascii(&id[4..24]));
    println!("identify_mn={}", nvme::ascii(&id[24..64]));

    // Take the data page away from the device, then ask for the same DMA again.
    ctrl.data.write(0, &[0xa5; 64]);
    iommufd.unmap(nvme::IOVA_DATA, 4096)?;
    match ctrl.identify_controller(2, Duration::from_secs(15)) {
        Ok(c) => println!("after_unmap_status={:#x}", c.status),
        Err(e) => println!("after_unmap_error={e}"),
    }
    let untouched = ctrl.data.bytes(0, 64).iter().all(|&b| b == 0xa5);
    println!("after_unmap_buffer_untouched={}", u32::from(untouched));
    ctrl.shutdown()
}

fn hold(sysfs: &str, secs: u64) -> vfio::Result<()> {
    let (_iommufd, _dev) = cdev_attach(sysfs)?;
    println!("held");
    std::thread::sleep(Duration::from_secs(secs));
    println!("released");
    Ok(())
}

fn bad_args(sysfs: &str) -> vfio::Result<()> {
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    for (name, errno) in dev.bad_arg_cases() {
        println!("{name}={errno}");
    }
    Ok(())
}

fn same_group(a: &str, b: &str) -> vfio::Result<()> {
    let result = |r: vfio::Result<vfio::Device>| match r {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    {
        let ctx = vfio::Iommufd::open()?;
        let da = vfio::cdev_bind(&vfio::cdev_path(a)?, &ctx)?;
        let db = vfio::cdev_bind(&vfio::cdev_path(b)?, &ctx);
        println!("same_ctx={}", result(db));
        drop(da);
    }
    let ctx1 = vfio::Iommufd::open()?;
    let ctx2 = vfio::Iommufd::open()?;
    let _da = vfio::cdev_bind(&vfio::cdev_path(a)?, &ctx1)?;
    println!("other_ctx={}", result(vfio::cdev_bind(&vfio::cdev_path(b)?, &ctx2)));
    Ok(())
}

fn show_device(dev: &vfio::Device, ops: &[Op]) -> vfio::Result<()> {
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
        if let Some(areas) = dev.sparse_areas(index)? {
            let list: Vec<String> = areas.iter().map(|(o, s)| format!("{o:#x}+{s:#x}")).collect();
            println!("region{index}_sparse={}", list.join(","));
        }
    }
    for op in ops {
        if let Some(at) = op.mmap {
            let key = format!("mmap_{}_{:#x}", op.region, op.offset + at);
            match dev.mmap_read(op.region, op.offset, op.len, at as usize) {
                Ok(v) => println!("{key}={v:#x}"),
                Err(e) => println!("{key}_error={}", e.err),
            }
            continue;
        }
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
    eprintln!("       mpw-vfio-client cdev-open <sysfs dev> [OP]...");
    eprintln!("       mpw-vfio-client nvme-identify <sysfs dev>");
    eprintln!("       mpw-vfio-client same-group <sysfs dev A> <sysfs dev B>");
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
        ["cdev-open", sysfs, rest @ ..] => {
            let Some(ops) = rest.iter().map(|s| parse_op(s)).collect::<Option<Vec<_>>>() else {
                return usage();
            };
            cdev_open(sysfs, &ops)
        }
        ["nvme-identify", sysfs] => nvme_identify(sysfs),
        ["same-group", a, b] => same_group(a, b),
        ["hold", sysfs, secs] => match secs.parse() {
            Ok(s) => hold(sysfs, s),
            Err(_) => return usage(),
        },
        ["bad-args", sysfs] => bad_args(sysfs),
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
