// SPDX-License-Identifier: GPL-2.0

//! mpw_test_vendor: a vendor parent driver that uses every hook of the vendor surface, for
//! the integration tests (`tests/integration/78-vendor-surface.sh`); not a product.
//!
//! It wraps an NVMe VF (QEMU's `nvme` with SR-IOV) given by `driver_override`, and:
//!
//! - presents IDs `1b36:7e57`, subsystem `7e57:0001`, revision `0x7e`; hides the PM
//!   capability; adds a vendor-specific capability (12 bytes, byte 4 writable);
//! - traps BAR0 `0x1000..0x1020`: the admin queue doorbells (`0x1000`, `0x1004`), which it
//!   counts and passes on, and two registers of its own where the I/O queue 1 doorbells
//!   were: `0x1008` reads the hook counters (`opens << 24 | closes << 16 | resets << 8`)
//!   and a write there sets the level of its emulated INTx line (INTA) to bit 0,
//!   `0x100c` reads the doorbell writes counted, and a write of `n` there raises MSI-X
//!   vector `n` to the user (`EIO` if the user has no eventfd on it); an 8-byte write of an
//!   IOVA at `0x1010` reads 8 bytes there from the user's DMA space and writes their
//!   complement just after them (the write fails with the access's errno), and `0x1018`
//!   reads the 8 bytes it read;
//! - emulates an I/O BAR2 of 32 bytes the VF does not have: eight scratch registers that read
//!   back what was written (at any width), the first one `0x7e57_0000` until written;
//! - offers a device-specific region (index 9) of type `VFIO_REGION_TYPE_PCI_VENDOR_TYPE |
//!   0x1b36`, subtype `0x7e57`, 8 KiB (two pages), writable: memory that reads back what was
//!   written, each byte `offset % 251` until then.

#![forbid(unsafe_code)]

use kernel::{
    c_str,
    prelude::*, //
};
use mdev_pci_wrap::{
    bindings,
    config::CapKind,
    mdev::TypeInfo,
    pci_driver::IdTable,
    vendor::{
        ConfigEdit,
        Irq,
        Trap,
        VendorRegion,
        VirtualBar, //
    },
    vf::{
        VfAccess,
        VfDriver, //
    },
};

/// The admin submission queue tail doorbell (NVMe, doorbell stride 4).
const SQ0_TAIL: u64 = 0x1000;
/// The admin completion queue head doorbell.
const CQ0_HEAD: u64 = 0x1004;
/// The hook counters.
const COUNTERS: u64 = 0x1008;
/// Doorbell writes (read); raise an MSI-X vector (write).
const DOORBELLS_IRQ: u64 = 0x100c;
/// An IOVA of the user's to read 8 bytes at, and write their complement after (write).
const DMA_IOVA: u64 = 0x1010;
/// The 8 bytes read there (read).
const DMA_SEEN: u64 = 0x1018;

/// The size of the device-specific region.
const REGION_SIZE: usize = 8192;

/// The emulated I/O BAR and its size.
const SCRATCH_BAR: usize = 2;
const SCRATCH_SIZE: u64 = 32;

/// What the hooks saw, kept for the life of the mdev, and the scratch registers.
#[derive(Default)]
struct Seen {
    opens: u8,
    closes: u8,
    resets: u8,
    doorbells: u32,
    dma_seen: u64,
    region: KVec<u8>,
    scratch: Option<[u8; SCRATCH_SIZE as usize]>,
}

impl Seen {
    fn region(&mut self) -> Result<&mut [u8]> {
        if self.region.is_empty() {
            for i in 0..REGION_SIZE {
                self.region.push((i % 251) as u8, GFP_KERNEL)?;
            }
        }
        Ok(&mut self.region)
    }

    fn scratch(&mut self) -> &mut [u8; SCRATCH_SIZE as usize] {
        self.scratch.get_or_insert_with(|| {
            let mut s = [0; SCRATCH_SIZE as usize];
            s[..4].copy_from_slice(&0x7e57_0000u32.to_le_bytes());
            s
        })
    }
}

struct TestVendor;

impl VfDriver for TestVendor {
    const NAME: &'static CStr = c_str!("mpw_test_vendor");
    const ID_TABLE: IdTable = IdTable::OVERRIDE_ONLY;
    const TYPES: &'static [TypeInfo] = &[TypeInfo {
        sysfs_name: c_str!("vf"),
        pretty_name: c_str!("Test vendor: every hook"),
        description: c_str!("An NVMe VF with edited config space and trapped doorbells"),
    }];
    type State = Seen;
    const TRAPS: &'static [Trap] = &[Trap::new(0, SQ0_TAIL, 32)];
    const VIRTUAL_BARS: &'static [VirtualBar] = &[VirtualBar::io(SCRATCH_BAR as u8, SCRATCH_SIZE)];
    const INTX: bool = true;
    const REGIONS: &'static [VendorRegion] = &[VendorRegion::pci_vendor(
        0x1b36,
        0x7e57,
        REGION_SIZE as u64,
        true,
    )];

    fn edit_config(config: &mut ConfigEdit<'_>) -> Result {
        config.set_ids(0x1b36, 0x7e57)?;
        config.set_subsystem_ids(0x7e57, 0x0001)?;
        config.set_revision(0x7e)?;
        let pm = CapKind::Std(bindings::PCI_CAP_ID_PM as u8);
        if config.find(pm).is_some() {
            config.hide(pm)?;
        }
        // ID and next (filled in), length, then "7E57" and a writable byte.
        let data = [0, 0, 12, 0, 0x5a, 0, 0, 0, b'7', b'E', b'5', b'7'];
        let writable = [0, 0, 0, 0, 0xff];
        config.add(
            CapKind::Std(bindings::PCI_CAP_ID_VNDR as u8),
            &data,
            &writable,
        )?;
        Ok(())
    }

    fn open(vf: &mut VfAccess<'_, Self>) -> Result {
        let s = vf.state();
        s.opens = s.opens.wrapping_add(1);
        Ok(())
    }

    fn close(vf: &mut VfAccess<'_, Self>) {
        let s = vf.state();
        s.closes = s.closes.wrapping_add(1);
    }

    fn reset_done(vf: &mut VfAccess<'_, Self>) {
        let s = vf.state();
        s.resets = s.resets.wrapping_add(1);
    }

    fn region_read(
        vf: &mut VfAccess<'_, Self>,
        _region: usize,
        off: u64,
        buf: &mut [u8],
    ) -> Result {
        let off = usize::try_from(off).map_err(|_| EINVAL)?;
        let src = vf.state().region()?;
        buf.copy_from_slice(src.get(off..off + buf.len()).ok_or(EINVAL)?);
        Ok(())
    }

    fn region_write(vf: &mut VfAccess<'_, Self>, _region: usize, off: u64, buf: &[u8]) -> Result {
        let off = usize::try_from(off).map_err(|_| EINVAL)?;
        let dst = vf.state().region()?;
        dst.get_mut(off..off + buf.len())
            .ok_or(EINVAL)?
            .copy_from_slice(buf);
        Ok(())
    }

    fn trap_read(vf: &mut VfAccess<'_, Self>, bar: usize, off: u64, width: u16) -> Result<u64> {
        if bar == SCRATCH_BAR {
            // The library passes only accesses inside the BAR, naturally aligned.
            let s = vf.state().scratch();
            let bytes = s
                .get(off as usize..off as usize + usize::from(width))
                .ok_or(EINVAL)?;
            return Ok(bytes.iter().rev().fold(0, |v, b| v << 8 | u64::from(*b)));
        }
        match (off, width) {
            (COUNTERS, 4) => {
                let s = vf.state();
                Ok(u64::from(s.opens) << 24 | u64::from(s.closes) << 16 | u64::from(s.resets) << 8)
            }
            (DOORBELLS_IRQ, 4) => Ok(vf.state().doorbells.into()),
            (DMA_SEEN, 8) => Ok(vf.state().dma_seen),
            _ => vf.read(bar, off, width),
        }
    }

    fn trap_write(
        vf: &mut VfAccess<'_, Self>,
        bar: usize,
        off: u64,
        width: u16,
        val: u64,
    ) -> Result {
        if bar == SCRATCH_BAR {
            let s = vf.state().scratch();
            let bytes = s
                .get_mut(off as usize..off as usize + usize::from(width))
                .ok_or(EINVAL)?;
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (val >> (8 * i)) as u8;
            }
            return Ok(());
        }
        match (off, width) {
            (SQ0_TAIL | CQ0_HEAD, 4) => {
                let s = vf.state();
                s.doorbells = s.doorbells.wrapping_add(1);
                vf.write(bar, off, width, val)
            }
            (COUNTERS, 4) => {
                vf.set_intx(val & 1 != 0);
                Ok(())
            }
            (DOORBELLS_IRQ, 4) => match u32::try_from(val) {
                Ok(n) if vf.raise(Irq::MsiX(n)) => Ok(()),
                _ => Err(EIO),
            },
            (DMA_IOVA, 8) => {
                let mut seen = [0u8; 8];
                vf.dma_read(val, &mut seen)?;
                let seen = u64::from_le_bytes(seen);
                vf.state().dma_seen = seen;
                vf.dma_write(val.checked_add(8).ok_or(EINVAL)?, &(!seen).to_le_bytes())
            }
            _ => Err(EINVAL),
        }
    }
}

mdev_pci_wrap::module_vf_driver! {
    type: TestVendor,
    name: "mpw_test_vendor",
    authors: ["mdev_pci_wrap developers"],
    description: "mdev_pci_wrap test vendor: every vendor hook, on an NVMe VF",
    license: "GPL",
}
