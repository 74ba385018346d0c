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
//!         reset                                  VFIO_DEVICE_RESET; print `reset=ok` or
//!                                                `reset=<errno name>`
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
//!   irq-info <sysfs device dir>
//!       print `irq<i>_count=`, `irq<i>_flags=` and `irq<i>_flag_names=` (EVENTFD|NORESIZE...)
//!       of every IRQ index (VFIO_DEVICE_GET_IRQ_INFO)
//!   nvme-irq <sysfs device dir>
//!       enable MSI-X vector 0 with an eventfd (`msix_enabled=`, `proc_interrupts_msix=`: lines
//!       of /proc/interrupts naming an `mpw-msix[` vector), then have an NVMe controller post
//!       an Identify completion, which raises vector 0 (`identify_status=`, `msix0_fired=`,
//!       `msix0_count=`); signal the eventfd through VFIO_DEVICE_SET_IRQS with DATA_NONE and
//!       DATA_BOOL (`loopback_none=`, `loopback_bool=`, `loopback_bool_false=`: the counter
//!       read); detach the eventfd (fd -1) and complete another Identify
//!       (`after_detach_status=`, `after_detach_fired=`); disable MSI-X
//!       (`proc_interrupts_msix_after_disable=`)
//!   irq-loopback <sysfs device dir>
//!       enable every MSI-X vector, each with its own eventfd (`msix_count=`,
//!       `proc_interrupts_msix=`), signal the last one with DATA_NONE (`loopback_last=`, and
//!       `loopback_others=`: the sum of the other counters), disable MSI-X
//!       (`proc_interrupts_msix_after_disable=`)
//!   irq-trigger <sysfs device dir> msi|msix [write:R:OFF:LEN:VAL]...
//!       enable vector 0 of MSI or MSI-X with an eventfd (`irq_count=`, `cap_offset=`,
//!       `proc_interrupts=`, `user_ctrl_enable=`: the enable bit in the user's view of the
//!       capability), do the writes (which should make the device interrupt), wait for the
//!       eventfd (`irq_fired=`), disable (`proc_interrupts_after_disable=`)
//!   irq-bad-args <sysfs device dir>
//!       malformed VFIO_DEVICE_SET_IRQS / GET_IRQ_INFO requests; prints `<case>=<errno name>`
//!   req-wait <sysfs device dir> <seconds>
//!       open the device, set the request (REQ) eventfd, print `held`, wait for the request;
//!       print `req_fired=1` and close the device as soon as it comes (`req_fired=0` if it does
//!       not), then `released`

mod irq;
mod nvme;
mod vfio;

use std::io::Write;
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
    /// A VFIO_DEVICE_RESET rather than an access.
    reset: bool,
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_op(s: &str) -> Option<Op> {
    if s == "reset" {
        return Some(Op { region: 0, offset: 0, len: 0, write: None, mmap: None, reset: true });
    }
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
            return Some(Op { region, offset, len, write: None, mmap: Some(at), reset: false });
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
    Some(Op { region, offset, len, write, mmap: None, reset: false })
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

/// `EVENTFD|NORESIZE` for `struct vfio_irq_info` flags 0x9 (unknown bits in hex).
fn irq_flag_names(flags: u32) -> String {
    let known = [
        (vfio::VFIO_IRQ_INFO_EVENTFD, "EVENTFD"),
        (vfio::VFIO_IRQ_INFO_MASKABLE, "MASKABLE"),
        (vfio::VFIO_IRQ_INFO_AUTOMASKED, "AUTOMASKED"),
        (vfio::VFIO_IRQ_INFO_NORESIZE, "NORESIZE"),
    ];
    let mut names: Vec<String> = known.iter().filter(|(b, _)| flags & b != 0).map(|(_, n)| n.to_string()).collect();
    let rest = known.iter().fold(flags, |f, (b, _)| f & !b);
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    names.join("|")
}

fn irq_info(sysfs: &str) -> vfio::Result<()> {
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    for index in 0..dev.info()?.num_irqs {
        let irq = dev.irq_info(index)?;
        println!("irq{index}_count={}", irq.count);
        println!("irq{index}_flags={:#x}", irq.flags);
        println!("irq{index}_flag_names={}", irq_flag_names(irq.flags));
    }
    Ok(())
}

const MSIX: u32 = vfio::VFIO_PCI_MSIX_IRQ_INDEX;
const TRIGGER_FD: u32 = vfio::VFIO_IRQ_SET_ACTION_TRIGGER | vfio::VFIO_IRQ_SET_DATA_EVENTFD;
const TRIGGER_NONE: u32 = vfio::VFIO_IRQ_SET_ACTION_TRIGGER | vfio::VFIO_IRQ_SET_DATA_NONE;
const TRIGGER_BOOL: u32 = vfio::VFIO_IRQ_SET_ACTION_TRIGGER | vfio::VFIO_IRQ_SET_DATA_BOOL;
/// What the host names the vectors it requests for a user's MSI-X (`mpw-msix[<n>](<VF>)`).
const HOST_MSIX_NAME: &str = "mpw-msix[";

/// The eventfd counter read after `r` (a request to signal it) or the request's error.
fn signalled(r: vfio::Result<()>, efd: &irq::EventFd, wait: Duration) -> vfio::Result<String> {
    Ok(match r {
        Ok(()) => efd.wait(wait)?.to_string(),
        Err(e) => e.to_string(),
    })
}

fn nvme_irq(sysfs: &str) -> vfio::Result<()> {
    let (iommufd, dev) = cdev_attach(sysfs)?;
    println!("msix_count={}", dev.irq_info(MSIX)?.count);
    // MSI-X first: the controller then creates its admin completion queue (always interrupt
    // enabled, on vector 0) with MSI-X on, and signals vector 0 for each completion.
    let efd = irq::EventFd::new()?;
    if let Err(e) = dev.set_irqs(TRIGGER_FD, MSIX, 0, 1, &irq::fds(&[efd.raw()])) {
        println!("msix_enabled={e}");
        return Err(e);
    }
    println!("msix_enabled=1");
    println!("proc_interrupts_msix={}", irq::proc_interrupts(HOST_MSIX_NAME)?);

    let mut ctrl = nvme::Nvme::init(&dev, &iommufd)?;
    let c = ctrl.identify_controller(1, Duration::from_secs(30))?;
    println!("identify_status={:#x}", c.status);
    let n = efd.wait(Duration::from_secs(10))?;
    println!("msix0_fired={}", u32::from(n > 0));
    println!("msix0_count={n}");

    // Loopback: VFIO signals the vector's eventfd itself.
    let r = dev.set_irqs(TRIGGER_NONE, MSIX, 0, 1, &[]);
    println!("loopback_none={}", signalled(r, &efd, Duration::from_secs(1))?);
    let r = dev.set_irqs(TRIGGER_BOOL, MSIX, 0, 1, &[1]);
    println!("loopback_bool={}", signalled(r, &efd, Duration::from_secs(1))?);
    let r = dev.set_irqs(TRIGGER_BOOL, MSIX, 0, 1, &[0]);
    println!("loopback_bool_false={}", signalled(r, &efd, Duration::from_millis(500))?);

    // Without its eventfd the vector stays enabled, but a completion signals nothing.
    dev.set_irqs(TRIGGER_FD, MSIX, 0, 1, &irq::fds(&[-1]))?;
    efd.take()?;
    match ctrl.identify_controller(2, Duration::from_secs(30)) {
        Ok(c) => println!("after_detach_status={:#x}", c.status),
        Err(e) => println!("after_detach_status={e}"),
    }
    let n = efd.wait(Duration::from_secs(3))?;
    println!("after_detach_fired={}", u32::from(n > 0));

    dev.set_irqs(TRIGGER_NONE, MSIX, 0, 0, &[])?;
    println!("proc_interrupts_msix_after_disable={}", irq::proc_interrupts(HOST_MSIX_NAME)?);
    ctrl.shutdown()
}

/// The config-space offset of capability `id` in the user's view of config space (0: none).
fn find_cap(dev: &vfio::Device, id: u8) -> vfio::Result<u64> {
    let cfg = vfio::VFIO_PCI_CONFIG_REGION_INDEX;
    let mut ptr = dev.read_reg(cfg, 0x34, 1)? & 0xfc;
    // At most 48 capabilities fit in the header's 192 bytes.
    for _ in 0..48 {
        if ptr == 0 {
            break;
        }
        if dev.read_reg(cfg, ptr, 1)? == u64::from(id) {
            return Ok(ptr);
        }
        ptr = dev.read_reg(cfg, ptr + 1, 1)? & 0xfc;
    }
    Ok(0)
}

fn irq_trigger(sysfs: &str, kind: &str, ops: &[Op]) -> vfio::Result<()> {
    let (index, cap_id, enable_bit, name) = match kind {
        "msi" => (vfio::VFIO_PCI_MSI_IRQ_INDEX, 0x05, 0x0001, "mpw-msi["),
        _ => (MSIX, 0x11, 0x8000, HOST_MSIX_NAME),
    };
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    println!("irq_count={}", dev.irq_info(index)?.count);
    let cap = find_cap(&dev, cap_id)?;
    println!("cap_offset={cap:#x}");
    let efd = irq::EventFd::new()?;
    dev.set_irqs(TRIGGER_FD, index, 0, 1, &irq::fds(&[efd.raw()]))?;
    println!("proc_interrupts={}", irq::proc_interrupts(name)?);
    // The host enabled the vectors in hardware; the user's view keeps the user's bits.
    if cap != 0 {
        let ctrl = dev.read_reg(vfio::VFIO_PCI_CONFIG_REGION_INDEX, cap + 2, 2)?;
        println!("user_ctrl_enable={}", u32::from(ctrl & enable_bit != 0));
    }
    for op in ops {
        if let Some(v) = op.write {
            dev.write_region(op.region, op.offset, &v.to_le_bytes()[..op.len])?;
        }
    }
    let n = efd.wait(Duration::from_secs(10))?;
    println!("irq_fired={}", u32::from(n > 0));
    dev.set_irqs(TRIGGER_NONE, index, 0, 0, &[])?;
    println!("proc_interrupts_after_disable={}", irq::proc_interrupts(name)?);
    Ok(())
}

fn irq_loopback(sysfs: &str) -> vfio::Result<()> {
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    let n = dev.irq_info(MSIX)?.count;
    println!("msix_count={n}");
    if n == 0 {
        return Err(vfio::Error {
            what: "the device has no MSI-X vectors".into(),
            err: std::io::Error::from_raw_os_error(libc::ENODEV),
        });
    }
    let efds = (0..n).map(|_| irq::EventFd::new()).collect::<vfio::Result<Vec<_>>>()?;
    let fds: Vec<i32> = efds.iter().map(irq::EventFd::raw).collect();
    dev.set_irqs(TRIGGER_FD, MSIX, 0, n, &irq::fds(&fds))?;
    println!("proc_interrupts_msix={}", irq::proc_interrupts(HOST_MSIX_NAME)?);

    dev.set_irqs(TRIGGER_NONE, MSIX, n - 1, 1, &[])?;
    let (last, others) = efds.split_last().expect("n > 0");
    println!("loopback_last={}", last.wait(Duration::from_secs(1))?);
    let mut sum = 0;
    for e in others {
        sum += e.take()?;
    }
    println!("loopback_others={sum}");

    dev.set_irqs(TRIGGER_NONE, MSIX, 0, 0, &[])?;
    println!("proc_interrupts_msix_after_disable={}", irq::proc_interrupts(HOST_MSIX_NAME)?);
    Ok(())
}

fn irq_bad_args(sysfs: &str) -> vfio::Result<()> {
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    for (name, errno) in irq::bad_irq_cases(&dev)? {
        println!("{name}={errno}");
    }
    Ok(())
}

fn req_wait(sysfs: &str, secs: u64) -> vfio::Result<()> {
    let (iommufd, dev) = cdev_attach(sysfs)?;
    let efd = irq::EventFd::new()?;
    dev.set_irqs(TRIGGER_FD, vfio::VFIO_PCI_REQ_IRQ_INDEX, 0, 1, &irq::fds(&[efd.raw()]))?;
    println!("held");
    std::io::stdout().flush().map_err(|err| vfio::Error { what: "flush stdout".into(), err })?;
    let fired = efd.wait(Duration::from_secs(secs))? > 0;
    println!("req_fired={}", u32::from(fired));
    // Close at once: the removal waits for it.
    drop(dev);
    drop(iommufd);
    println!("released");
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
    println!("device_reset={}", u32::from(info.flags & vfio::VFIO_DEVICE_FLAGS_RESET != 0));
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
        if op.reset {
            match dev.reset() {
                Ok(()) => println!("reset=ok"),
                Err(e) => println!("reset={}", vfio::outcome::<()>(Err(e.err))),
            }
            continue;
        }
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
    eprintln!("       mpw-vfio-client hold <sysfs dev> <seconds>");
    eprintln!("       mpw-vfio-client bad-args <sysfs dev>");
    eprintln!("       mpw-vfio-client same-group <sysfs dev A> <sysfs dev B>");
    eprintln!("       mpw-vfio-client irq-info <sysfs dev>");
    eprintln!("       mpw-vfio-client nvme-irq <sysfs dev>");
    eprintln!("       mpw-vfio-client irq-loopback <sysfs dev>");
    eprintln!("       mpw-vfio-client irq-trigger <sysfs dev> msi|msix [write:R:OFF:LEN:VAL]...");
    eprintln!("       mpw-vfio-client irq-bad-args <sysfs dev>");
    eprintln!("       mpw-vfio-client req-wait <sysfs dev> <seconds>");
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
        ["irq-info", sysfs] => irq_info(sysfs),
        ["nvme-irq", sysfs] => nvme_irq(sysfs),
        ["irq-loopback", sysfs] => irq_loopback(sysfs),
        ["irq-bad-args", sysfs] => irq_bad_args(sysfs),
        ["irq-trigger", sysfs, kind @ ("msi" | "msix"), rest @ ..] => {
            let Some(ops) = rest.iter().map(|s| parse_op(s)).collect::<Option<Vec<_>>>() else {
                return usage();
            };
            irq_trigger(sysfs, kind, &ops)
        }
        ["req-wait", sysfs, secs] => match secs.parse() {
            Ok(s) => req_wait(sysfs, s),
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
