// SPDX-License-Identifier: GPL-2.0

//! Benchmarks of a device opened through VFIO (`make bench`, scripts/bench.sh): the same code
//! measures a function bound to vfio-pci (its sysfs directory under /sys/bus/pci/devices)
//! and the same function wrapped as an mdev (/sys/bus/mdev/devices/<uuid>).
//!
//! Each command prints `key=value` lines: the number of operations, nanoseconds per
//! operation (`*_ns`) and operations per second (`*_per_s`). The numbers are wall-clock
//! time of the whole loop (`Instant`), divided by the operations in it.

use crate::dma::DmaMem;
use crate::nvme::{self, Nvme};
use crate::vfio::{self, ctx, Device, DmaMap, Error, Iommufd, Result};
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

const PAGE: usize = 4096;
const CFG: u32 = vfio::VFIO_PCI_CONFIG_REGION_INDEX;

fn report(prefix: &str, ops: u64, elapsed: Duration) {
    let ns = elapsed.as_nanos() as f64 / ops.max(1) as f64;
    println!("{prefix}_ops={ops}");
    println!("{prefix}_ns={ns:.1}");
    println!("{prefix}_per_s={:.0}", 1e9 / ns);
}

fn einval(what: String) -> Error {
    Error { what, err: io::Error::from_raw_os_error(libc::EINVAL) }
}

/// Memory decoding on in the user's COMMAND register (a VF's real bit is hardwired to 0 and
/// both vfio-pci and the library virtualize it; set it anyway, as a VMM's guest does).
fn enable_memory(dev: &Device) -> Result<()> {
    let cmd = dev.read_reg(CFG, 0x4, 2)?;
    if cmd & 0x2 == 0 {
        dev.write_reg(CFG, 0x4, 2, cmd | 0x2)?;
    }
    Ok(())
}

/// P1: MMIO reads of the 32-bit register at `read_off` and writes (of the value it holds)
/// to the one at `write_off` of region `region`, through an mmap of the region: `iters` of
/// each, after one untimed access of each (the page fault that maps the BAR page).
pub fn mmio(sysfs: &str, region: u32, read_off: u64, write_off: u64, iters: u64) -> Result<()> {
    let (_iommufd, dev) = crate::cdev_attach(sysfs)?;
    enable_memory(&dev)?;
    if !read_off.is_multiple_of(4) || !write_off.is_multiple_of(4) {
        return Err(einval(format!("offsets {read_off:#x}, {write_off:#x} not 4-byte aligned")));
    }
    let len = (read_off.max(write_off) as usize + 4).div_ceil(PAGE) * PAGE;
    let m = dev.map(region, 0, len)?;
    let (r, w) = (read_off as usize, write_off as usize);
    let v = m.read_u32(w);
    m.write_u32(w, v);
    let mut sum = u64::from(m.read_u32(r));

    let t = Instant::now();
    for _ in 0..iters {
        sum = sum.wrapping_add(u64::from(m.read_u32(r)));
    }
    report("mmio_read", iters, t.elapsed());
    let t = Instant::now();
    for _ in 0..iters {
        m.write_u32(w, v);
    }
    report("mmio_write", iters, t.elapsed());
    // (So that the reads have a use.)
    println!("mmio_read_sum={sum:#x}");
    Ok(())
}

/// P2: trapped accesses through the device fd, pread/pwrite at the region offsets: 4-byte
/// reads of config space at 0 (the IDs), 2-byte writes of the COMMAND register (its own
/// value), 4-byte reads at `read_off` and writes (of its value) at `write_off` of region
/// `region`; `iters` of each.
pub fn rw(sysfs: &str, region: u32, read_off: u64, write_off: u64, iters: u64) -> Result<()> {
    let (_iommufd, dev) = crate::cdev_attach(sysfs)?;
    enable_memory(&dev)?;
    let cfg = dev.region_info(CFG)?.offset;
    let bar = dev.region_info(region)?.offset;
    let f = &dev.file;
    let mut b = [0u8; 4];
    let mut cmd = [0u8; 2];
    ctx("pread COMMAND", f.read_exact_at(&mut cmd, cfg + 0x4))?;
    let mut wv = [0u8; 4];
    ctx(format!("pread region {region} at {write_off:#x}"), f.read_exact_at(&mut wv, bar + write_off))?;

    type Access<'a> = Box<dyn FnMut() -> io::Result<()> + 'a>;
    let cases: [(&str, Access); 4] = [
        ("cfg_read", Box::new(|| f.read_exact_at(&mut b, cfg))),
        ("cfg_write", Box::new(|| f.write_all_at(&cmd, cfg + 0x4))),
        ("bar_read", Box::new(|| f.read_exact_at(&mut [0u8; 4], bar + read_off))),
        ("bar_write", Box::new(|| f.write_all_at(&wv, bar + write_off))),
    ];
    for (name, mut access) in cases {
        ctx(format!("{name} (untimed first)"), access())?;
        let t = Instant::now();
        for _ in 0..iters {
            ctx(name.to_string(), access())?;
        }
        report(name, iters, t.elapsed());
    }
    Ok(())
}

const IOVA_IO_SQ: u64 = 0x100_0000;
const IOVA_IO_CQ: u64 = 0x110_0000;
const IOVA_IO_DATA: u64 = 0x200_0000;
const ADMIN_WAIT: Duration = Duration::from_secs(30);
const OP_IDENTIFY: u8 = 0x06;
const OP_CREATE_SQ: u8 = 0x01;
const OP_CREATE_CQ: u8 = 0x05;
const OP_READ: u8 = 0x02;

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// An admin command that must succeed.
fn admin_ok(ctrl: &mut Nvme, sqe: &[u8; 64], what: &str) -> Result<()> {
    let c = ctrl.admin(sqe, ADMIN_WAIT)?;
    if c.status != 0 {
        return Err(Error {
            what: format!("{what}: NVMe status {:#x}", c.status),
            err: io::Error::from_raw_os_error(libc::EIO),
        });
    }
    Ok(())
}

/// The first active namespace of the controller: its ID, size in blocks and block size.
fn first_namespace(ctrl: &mut Nvme) -> Result<(u32, u64, u64)> {
    admin_ok(ctrl, &nvme::command_sqe(OP_IDENTIFY, 10, 0, nvme::IOVA_DATA, [2, 0, 0]), "Identify active namespace list")?;
    let nsid = le32(&ctrl.data.bytes(0, 4), 0);
    if nsid == 0 {
        return Err(Error {
            what: "the controller has no active namespace (attach one: nvme attach-ns)".into(),
            err: io::Error::from_raw_os_error(libc::ENODEV),
        });
    }
    admin_ok(ctrl, &nvme::command_sqe(OP_IDENTIFY, 11, nsid, nvme::IOVA_DATA, [0, 0, 0]), "Identify namespace")?;
    let id = ctrl.data.bytes(0, 4096);
    let nsze = u64::from_le_bytes(id[0..8].try_into().unwrap_or([0; 8]));
    let flbas = id[26];
    let index = usize::from((flbas & 0xf) | ((flbas >> 5) & 0x3) << 4);
    let lbads = (le32(&id, 128 + 4 * index) >> 16) & 0xff;
    Ok((nsid, nsze, 1u64 << lbads.min(63)))
}

/// P3: 4 KiB reads through an I/O queue pair of the client's own (queue 1: completion
/// queue without interrupts, polled; submission queue; both in memory mapped into the
/// IOAS), `qd` commands outstanding, `count` in all, doorbells written through an mmap of
/// BAR0. Reads go to consecutive 4 KiB blocks of the first active namespace, wrapping.
pub fn nvme_io(sysfs: &str, qd: u64, count: u64) -> Result<()> {
    let (iommufd, dev) = crate::cdev_attach(sysfs)?;
    let mut ctrl = Nvme::init(&dev, &iommufd)?;
    let (nsid, nsze, lba) = first_namespace(&mut ctrl)?;
    if lba > PAGE as u64 || nsze < PAGE as u64 / lba {
        return Err(einval(format!("namespace {nsid}: {nsze} blocks of {lba} bytes")));
    }
    let nlb = PAGE as u64 / lba;
    let blocks = nsze / nlb;
    let cap = dev.read_reg(0, nvme::REG_CAP, 8)?;
    let qsize = ((cap & 0xffff) + 1).min(64);
    if qd == 0 || qd >= qsize {
        return Err(einval(format!("queue depth {qd}: 1..{} here", qsize - 1)));
    }
    println!("nvme_nsid={nsid}");
    println!("nvme_lba_size={lba}");
    println!("nvme_qsize={qsize}");
    println!("nvme_qd={qd}");

    let sq = DmaMem::new(qsize as usize * 64)?;
    let cq = DmaMem::new(qsize as usize * 16)?;
    let data = DmaMem::new(qd as usize * PAGE)?;
    iommufd.map_dma(sq.va(), sq.len() as u64, IOVA_IO_SQ)?;
    iommufd.map_dma(cq.va(), cq.len() as u64, IOVA_IO_CQ)?;
    iommufd.map_dma(data.va(), data.len() as u64, IOVA_IO_DATA)?;
    let qs = ((qsize - 1) as u32) << 16;
    admin_ok(&mut ctrl, &nvme::command_sqe(OP_CREATE_CQ, 12, 0, IOVA_IO_CQ, [qs | 1, 1, 0]), "Create I/O CQ")?;
    admin_ok(&mut ctrl, &nvme::command_sqe(OP_CREATE_SQ, 13, 0, IOVA_IO_SQ, [qs | 1, (1 << 16) | 1, 0]), "Create I/O SQ")?;

    let stride = ctrl.doorbell_stride() as usize;
    let (sq_db, cq_db) = (0x1000 + 2 * stride, 0x1000 + 3 * stride);
    let bar = dev.map(0, 0, (cq_db + 4).div_ceil(PAGE) * PAGE)?;
    let (mut tail, mut head, mut phase) = (0u64, 0u64, 1u32);
    let mut next_block = 0u64;
    let mut submit = |slot: u64, tail: &mut u64| {
        let slba = (next_block % blocks) * nlb;
        next_block += 1;
        let cdw = [slba as u32, (slba >> 32) as u32, (nlb - 1) as u32];
        sq.write_block(*tail as usize * 64, &nvme::command_sqe(OP_READ, slot as u16, nsid, IOVA_IO_DATA + slot * PAGE as u64, cdw));
        *tail = (*tail + 1) % qsize;
    };
    let first = qd.min(count);
    for slot in 0..first {
        submit(slot, &mut tail);
    }
    let t = Instant::now();
    fence(Ordering::SeqCst);
    bar.write_u32(sq_db, tail as u32);
    let (mut done, mut submitted, mut spins) = (0u64, first, 0u64);
    while done < count {
        let dw3 = cq.read_u32(head as usize * 16 + 12);
        if (dw3 >> 16) & 1 != phase {
            spins += 1;
            if spins % 4096 == 0 && t.elapsed() > ADMIN_WAIT {
                return Err(Error {
                    what: format!("no completion in {ADMIN_WAIT:?} ({done} of {count} done)"),
                    err: io::Error::from_raw_os_error(libc::ETIMEDOUT),
                });
            }
            continue;
        }
        // Every completion that is there, then one doorbell write each.
        let mut resubmitted = false;
        while (cq.read_u32(head as usize * 16 + 12) >> 16) & 1 == phase {
            let dw3 = cq.read_u32(head as usize * 16 + 12);
            let status = (dw3 >> 17) & 0x7fff;
            if status != 0 {
                return Err(Error {
                    what: format!("read {done}: NVMe status {status:#x}"),
                    err: io::Error::from_raw_os_error(libc::EIO),
                });
            }
            head = (head + 1) % qsize;
            if head == 0 {
                phase ^= 1;
            }
            done += 1;
            if submitted < count {
                submit(u64::from(dw3 as u16), &mut tail);
                submitted += 1;
                resubmitted = true;
            }
        }
        bar.write_u32(cq_db, head as u32);
        if resubmitted {
            fence(Ordering::SeqCst);
            bar.write_u32(sq_db, tail as u32);
        }
    }
    report(&format!("nvme_read_qd{qd}"), count, t.elapsed());
    println!("nvme_read_qd{qd}_mib_per_s={:.1}", count as f64 * 4096.0 / 1048576.0 / t.elapsed().as_secs_f64());
    ctrl.shutdown()
}

/// The device's cdev opened, bound to a new iommufd context, attached to its IOAS, and a
/// page of memory mapped for DMA: a device ready for DMA.
fn ready(sysfs: &str) -> Result<(Iommufd, Device, nvme::DmaPage)> {
    let iommufd = Iommufd::open()?;
    let dev = vfio::cdev_bind(&vfio::cdev_path(sysfs)?, &iommufd)?;
    dev.attach(&iommufd)?;
    let page = nvme::DmaPage::new().map_err(|err| Error { what: "mmap a page".into(), err })?;
    iommufd.map(page.va(), PAGE as u64, nvme::IOVA_DATA)?;
    Ok((iommufd, dev, page))
}

fn write_sysfs(path: &str, v: &str) -> Result<()> {
    ctx(format!("write {v} to {path}"), std::fs::write(path, v))
}

fn ns(d: Duration) -> u128 {
    d.as_nanos()
}

/// P4, vfio-pci: the function `bdf` from its current driver to an open, DMA-ready device:
/// driver_override, unbind, bind (drivers_probe) to vfio-pci, then `ready`; then closed.
/// `ready_ns` is from the bind on, `total_ns` from the start.
pub fn open_ready_vfio(bdf: &str) -> Result<()> {
    let dir = format!("/sys/bus/pci/devices/{bdf}");
    let t0 = Instant::now();
    write_sysfs(&format!("{dir}/driver_override"), "vfio-pci")?;
    if std::path::Path::new(&format!("{dir}/driver")).exists() {
        write_sysfs(&format!("{dir}/driver/unbind"), bdf)?;
    }
    let t1 = Instant::now();
    write_sysfs("/sys/bus/pci/drivers_probe", bdf)?;
    let t2 = Instant::now();
    let held = ready(&dir)?;
    let t3 = Instant::now();
    drop(held);
    let t4 = Instant::now();
    println!("unbind_ns={}", ns(t1 - t0));
    println!("bind_ns={}", ns(t2 - t1));
    println!("open_ns={}", ns(t3 - t2));
    println!("ready_ns={}", ns(t3 - t1));
    println!("total_ns={}", ns(t3 - t0));
    println!("close_ns={}", ns(t4 - t3));
    Ok(())
}

/// P4, mdev: `echo <uuid> > create` on the type `mdev_type` of the parent `bdf`, then
/// `ready` on the new mdev; then closed (the mdev stays). `ready_ns` and `total_ns` are
/// both from the create on.
pub fn open_ready_mdev(bdf: &str, mdev_type: &str, uuid: &str) -> Result<()> {
    let create = format!("/sys/class/mdev_bus/{bdf}/mdev_supported_types/{mdev_type}/create");
    let t0 = Instant::now();
    write_sysfs(&create, uuid)?;
    let t1 = Instant::now();
    let held = ready(&format!("/sys/bus/mdev/devices/{uuid}"))?;
    let t2 = Instant::now();
    drop(held);
    let t3 = Instant::now();
    println!("create_ns={}", ns(t1 - t0));
    println!("open_ns={}", ns(t2 - t1));
    println!("ready_ns={}", ns(t2 - t0));
    println!("total_ns={}", ns(t2 - t0));
    println!("close_ns={}", ns(t3 - t2));
    Ok(())
}
