// SPDX-License-Identifier: GPL-2.0

//! `qtest-nvme`: an NVMe function as a guest of QEMU sees it, driven through qtest.
//!
//! What firmware and a guest driver would do, in that order: find the function on bus 0
//! (config cycles through 0xcf8/0xcfc), size and program its BARs and its command register,
//! read the controller's CAP and VS through the guest-physical BAR, build an admin queue
//! pair in guest RAM, program MSI-X vector 0 with a message address in guest RAM, ring the
//! doorbell for Identify Controller, and check what the controller wrote into guest RAM by
//! DMA and that the completion interrupt's message landed.

use crate::nvme::{ascii, identify_sqe, CC_ENABLE, QUEUE_ENTRIES, REG_ACQ, REG_AQA, REG_ASQ, REG_CAP, REG_CC, REG_CSTS, REG_VS};
use crate::qtest::{PciConfig, Qtest};
use crate::vfio::{Error, Result};
use std::io;
use std::time::{Duration, Instant};

/// Guest-physical addresses: the BAR window (q35's 32-bit hole above MMCONFIG, below the
/// IOAPIC) and four pages of guest RAM.
const BAR_WINDOW: u64 = 0xc000_0000;
const BAR_WINDOW_END: u64 = 0xfec0_0000;
const GPA_SQ: u64 = 0x10_0000;
const GPA_CQ: u64 = 0x10_1000;
const GPA_DATA: u64 = 0x10_2000;
const GPA_MSI: u64 = 0x10_3000;
const MSI_DATA: u32 = 0x4d50_5721;

fn fail(what: String, errno: i32) -> Error {
    Error { what, err: io::Error::from_raw_os_error(errno) }
}

/// A BAR as firmware assigned it.
#[derive(Clone, Copy, Default)]
struct Bar {
    gpa: u64,
    size: u64,
    io: bool,
    is64: bool,
}

/// Sizes each BAR and places the memory BARs in the BAR window (naturally aligned), as
/// firmware does; I/O BARs are sized but left unassigned (nothing here uses them).
fn assign_bars(cfg: &mut PciConfig<'_>) -> Result<[Bar; 6]> {
    let mut bars = [Bar::default(); 6];
    let mut next = BAR_WINDOW;
    let mut i = 0;
    while i < 6 {
        let off = 0x10 + 4 * i as u8;
        let orig = cfg.read32(off)?;
        cfg.write32(off, 0xffff_ffff)?;
        let probe = cfg.read32(off)?;
        if orig & 1 == 1 {
            cfg.write32(off, orig)?;
            let size = u64::from(!(probe & !0x3) & 0xffff) + 1;
            if probe & !0x3 != 0 {
                bars[i] = Bar { gpa: 0, size, io: true, is64: false };
            }
            i += 1;
            continue;
        }
        let is64 = orig & 0x6 == 0x4;
        let mut mask = u64::from(probe & !0xf);
        if is64 && i < 5 {
            cfg.write32(off + 4, 0xffff_ffff)?;
            mask |= u64::from(cfg.read32(off + 4)?) << 32;
        } else if mask != 0 {
            mask |= 0xffff_ffff_0000_0000;
        }
        if mask == 0 {
            cfg.write32(off, orig)?;
            i += 1;
            continue;
        }
        let size = (!mask).wrapping_add(1);
        let gpa = next.next_multiple_of(size);
        if gpa + size > BAR_WINDOW_END {
            return Err(fail(format!("BAR{i} of {size:#x} bytes does not fit the window"), libc::ENOSPC));
        }
        next = gpa + size;
        cfg.write32(off, gpa as u32 | (orig & 0xf))?;
        if is64 {
            cfg.write32(off + 4, (gpa >> 32) as u32)?;
        }
        bars[i] = Bar { gpa, size, io: false, is64 };
        i += if is64 { 2 } else { 1 };
    }
    Ok(bars)
}

fn wait_for(
    qt: &mut Qtest,
    what: &str,
    limit: Duration,
    mut done: impl FnMut(&mut Qtest) -> Result<bool>,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if done(qt)? {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            return Err(fail(format!("timed out after {} s waiting for {what}", limit.as_secs()), libc::ETIMEDOUT));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs QEMU (`qemu`, with `args`: the machine and the device), drives the NVMe function at
/// `devfn` of bus 0 as a guest would, and prints what it saw.
pub fn run(qemu: &str, devfn: u8, args: &[String]) -> Result<()> {
    let start = Instant::now();
    let mut qt = Qtest::start(qemu, args, Duration::from_secs(120))?;
    println!("qtest=connected");
    drive(&mut qt, devfn, start)
}

/// As [`run`], for a QEMU that another program starts with `-qtest unix:<sock>` (libvirt):
/// listens on `sock` and waits up to `wait` for that QEMU; drives the function at `devfn`, if
/// any. With `eject`, the guest then stays for up to that long as the guest's ACPI PCI
/// hot-plug handler (see [`eject_requested`]).
pub fn run_listening(sock: &str, wait: Duration, devfn: Option<u8>, eject: Option<Duration>) -> Result<()> {
    let start = Instant::now();
    let mut qt = Qtest::listen(sock, wait)?;
    println!("qtest=connected");
    println!("qemu_pid={}", qt.pid());
    number_bridges(&mut qt)?;
    if let Some(devfn) = devfn {
        drive(&mut qt, devfn, start)?;
    }
    if let Some(limit) = eject {
        eject_requested(&mut qt, limit)?;
    }
    Ok(())
}

/// Gives each bridge on bus 0 (a PCIe root port) a bus of its own, 1 up, as firmware does
/// before any guest runs: until then QEMU reaches nothing behind it (nor lists it in
/// `query-pci`). Prints `guest_bridges=<devfn>:<bus>,...`.
fn number_bridges(qt: &mut Qtest) -> Result<()> {
    let mut bridges = Vec::new();
    let mut next: u32 = 1;
    for devfn in 0..=255u8 {
        let mut cfg = PciConfig { qt: &mut *qt, devfn };
        if cfg.read32(0x00)? == 0xffff_ffff || cfg.read8(0x0e)? & 0x7f != 1 {
            continue;
        }
        // Primary 0, secondary and subordinate `next`; the secondary latency timer kept.
        let keep = cfg.read32(0x18)? & 0xff00_0000;
        cfg.write32(0x18, keep | next << 16 | next << 8)?;
        bridges.push(format!("{devfn:#04x}:{next}"));
        next += 1;
    }
    println!("guest_bridges={}", bridges.join(","));
    Ok(())
}

/// QEMU's ACPI PCI hot-plug registers on q35 (ICH9's, `docs/specs/acpi_pci_hotplug.rst`): the
/// bus selector, and for the selected bus the slots with a pending unplug request and the
/// eject register.
const PCIHP_ICH9: u16 = 0x0cc0;
const PCIHP_DOWN: u16 = PCIHP_ICH9 + 0x4;
const PCIHP_EJ: u16 = PCIHP_ICH9 + 0x8;
const PCIHP_SEL: u16 = PCIHP_ICH9 + 0x10;
/// Bus selectors looked at (QEMU numbers the hot-pluggable buses from 0).
const PCIHP_BUSES: u32 = 32;

/// What a guest's ACPI hot-plug handler does when QEMU signals an unplug request (`device_del`,
/// libvirt's `detach-device`): for each bus selector, read the slots waiting for removal and
/// eject them. Polls for up to `limit` and ejects the first request it sees: prints
/// `ejected=<bsel>:<slot mask>`, then `ejects=1`; `ejects=0` if none came. A QEMU that goes
/// away meanwhile ends it with the qtest socket's error.
fn eject_requested(qt: &mut Qtest, limit: Duration) -> Result<()> {
    println!("guest_eject_watch=1");
    let _ = io::Write::flush(&mut io::stdout());
    let start = Instant::now();
    while start.elapsed() < limit {
        for bsel in 0..PCIHP_BUSES {
            qt.outl(PCIHP_SEL, bsel)?;
            let down = qt.inl(PCIHP_DOWN)?;
            if down != 0 {
                qt.outl(PCIHP_EJ, down)?;
                println!("ejected={bsel}:{down:#x}");
                println!("ejects=1");
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("ejects=0");
    Ok(())
}

fn drive(qt: &mut Qtest, devfn: u8, start: Instant) -> Result<()> {
    println!("qemu_start_ms={}", start.elapsed().as_millis());
    let mut cfg = PciConfig { qt: &mut *qt, devfn };
    let id = cfg.read32(0x00)?;
    if id == 0xffff_ffff {
        return Err(fail(format!("no function at devfn {devfn:#x} of bus 0"), libc::ENODEV));
    }
    let class = cfg.read32(0x08)? >> 8;
    println!("guest_vendor={:#06x}", id & 0xffff);
    println!("guest_device={:#06x}", id >> 16);
    println!("guest_class={class:#08x}");
    println!("guest_subsystem={:#010x}", cfg.read32(0x2c)?);
    println!("guest_header_type={:#04x}", cfg.read8(0x0e)?);
    println!("guest_intx_pin={}", cfg.read8(0x3d)?);
    let caps = cfg.caps()?;
    let list: Vec<String> = caps.iter().map(|(id, off)| format!("{id:#04x}@{off:#04x}")).collect();
    println!("guest_caps={}", list.join(","));
    if class != 0x01_08_02 {
        return Err(fail(format!("class {class:#08x} is not an NVMe controller"), libc::ENODEV));
    }

    // Firmware: BARs, then memory decoding and bus mastering.
    let bars = assign_bars(&mut cfg)?;
    for (i, b) in bars.iter().enumerate().filter(|(_, b)| b.size != 0) {
        let kind = if b.io { "io" } else if b.is64 { "mem64" } else { "mem32" };
        println!("guest_bar{i}={:#x}:{:#x}:{kind}", b.gpa, b.size);
    }
    let bar0 = bars[0];
    if bar0.io || bar0.size < 0x2000 {
        return Err(fail("BAR0 is not an NVMe register BAR".into(), libc::ENODEV));
    }
    let cmd = cfg.read16(0x04)?;
    cfg.write16(0x04, (cmd | 0x6) & !0x1)?;
    println!("guest_command={:#06x}", cfg.read16(0x04)?);

    // MSI-X vector 0 with its message in guest RAM (as libqos does), before the controller
    // is enabled.
    let msix = caps.iter().find(|(id, _)| *id == 0x11).map(|&(_, off)| off);
    let mut msix_enabled = false;
    if let Some(cap) = msix {
        let ctrl = cfg.read16(cap + 2)?;
        let table = cfg.read32(cap + 4)?;
        let (bir, toff) = ((table & 7) as usize, u64::from(table & !7));
        println!("guest_msix=bir{bir}:{toff:#x}:{}", (ctrl & 0x7ff) + 1);
        if bir < 6 && bars[bir].size > toff && !bars[bir].io {
            let entry = bars[bir].gpa + toff;
            cfg.write16(cap + 2, (ctrl | 0x8000) & !0x4000)?;
            msix_enabled = cfg.read16(cap + 2)? & 0x8000 != 0;
            let qt = &mut *cfg.qt;
            qt.writel(entry, GPA_MSI as u32)?;
            qt.writel(entry + 4, (GPA_MSI >> 32) as u32)?;
            qt.writel(entry + 8, MSI_DATA)?;
            qt.writel(entry + 12, 0)?;
            println!("guest_msix_entry0_data={:#010x}", qt.readl(entry + 8)?);
        }
    }
    println!("guest_msix_enabled={}", u8::from(msix_enabled));

    // The driver: registers through the BAR as the guest maps it.
    let b0 = bar0.gpa;
    let cap = qt.readq(b0 + REG_CAP)?;
    println!("nvme_cap={cap:#018x}");
    println!("nvme_vs={:#010x}", qt.readl(b0 + REG_VS)?);
    let stride = 4u64 << ((cap >> 32) & 0xf);
    let ready_limit = Duration::from_millis(500 * (((cap >> 24) & 0xff) + 1)).max(Duration::from_secs(5));
    qt.writel(b0 + REG_CC, 0)?;
    wait_for(qt, "CSTS.RDY = 0", ready_limit, |qt| Ok(qt.readl(b0 + REG_CSTS)? & 1 == 0))?;
    for gpa in [GPA_SQ, GPA_CQ, GPA_DATA, GPA_MSI] {
        qt.memset(gpa, 4096, 0)?;
    }
    qt.writel(b0 + REG_AQA, ((QUEUE_ENTRIES - 1) << 16 | (QUEUE_ENTRIES - 1)) as u32)?;
    qt.writeq(b0 + REG_ASQ, GPA_SQ)?;
    qt.writeq(b0 + REG_ACQ, GPA_CQ)?;
    qt.writel(b0 + REG_CC, CC_ENABLE as u32)?;
    let t = wait_for(qt, "CSTS.RDY = 1", ready_limit, |qt| Ok(qt.readl(b0 + REG_CSTS)? & 1 == 1))?;
    println!("nvme_ready_ms={}", t.as_millis());

    // Identify Controller into guest RAM; command identifier 0x4d50.
    qt.write(GPA_SQ, &identify_sqe(0x4d50, GPA_DATA))?;
    // (Nothing may have written the message yet: the interrupt below is the completion's.)
    println!("msix_message_before={:#010x}", qt.readl(GPA_MSI)?);
    qt.writel(b0 + 0x1000, 1)?;
    let t = wait_for(qt, "the Identify completion", Duration::from_secs(30), |qt| {
        Ok(qt.readl(GPA_CQ + 12)? & 0x1_0000 != 0)
    })?;
    let cqe = qt.read(GPA_CQ, 16)?;
    let dw3 = u32::from_le_bytes([cqe[12], cqe[13], cqe[14], cqe[15]]);
    println!("identify_ms={}", t.as_millis());
    println!("identify_cid={:#06x}", dw3 & 0xffff);
    println!("identify_status={:#x}", dw3 >> 17);
    qt.writel(b0 + 0x1000 + stride, 1)?;
    let data = qt.read(GPA_DATA, 72)?;
    println!("identify_vid={:#06x}", u16::from_le_bytes([data[0], data[1]]));
    println!("identify_ssvid={:#06x}", u16::from_le_bytes([data[2], data[3]]));
    println!("identify_sn={}", ascii(&data[4..24]));
    println!("identify_mn={}", ascii(&data[24..64]));
    println!("identify_fr={}", ascii(&data[64..72]));

    // The completion interrupt: QEMU stored the message in guest RAM.
    let fired = msix_enabled
        && wait_for(qt, "the MSI-X message", Duration::from_secs(10), |qt| Ok(qt.readl(GPA_MSI)? == MSI_DATA)).is_ok();
    println!("msix_fired={}", u8::from(fired));
    println!("msix_message={:#010x}", qt.readl(GPA_MSI)?);
    // Whether QEMU mmap'ed the device's BAR (its fast path: the guest's accesses above were
    // loads and stores, not preads): mappings of a VFIO device file in its address space.
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", qt.pid())).unwrap_or_default();
    let vfio_maps: Vec<String> = maps
        .lines()
        .filter(|l| l.contains("vfio"))
        .filter_map(|l| {
            let (lo, hi) = l.split_whitespace().next()?.split_once('-')?;
            let size = u64::from_str_radix(hi, 16).ok()? - u64::from_str_radix(lo, 16).ok()?;
            Some(format!("{size:#x}"))
        })
        .collect();
    println!("qemu_vfio_mmaps={}", vfio_maps.len());
    println!("qemu_vfio_mmap_sizes={}", vfio_maps.join(","));
    println!("qtest_commands={}", qt.commands);
    println!("total_ms={}", start.elapsed().as_millis());
    Ok(())
}
