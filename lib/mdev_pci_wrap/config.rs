// SPDX-License-Identifier: GPL-2.0

//! Virtual PCI configuration space of a wrapped VF: the registers the library emulates.
//!
//! C reference for the behaviour: `drivers/vfio/pci/vfio_pci_config.c`.
//!
//! A VF's config space reads `0xffff` for the vendor and device IDs and `0` for its BARs in
//! hardware: the IDs live in the PF's SR-IOV capability and the BARs in its VF BAR
//! registers. The guest must see a normal function, so the library virtualises:
//!
//! - the vendor and device IDs (read-only, from what the PCI core learned for the VF);
//! - the six BARs and the expansion ROM BAR, as the BAR sizing protocol expects: a write is
//!   stored, a read returns the stored address masked to the BAR's size, with the BAR's
//!   type bits. An absent BAR (and the ROM BAR of a VF) reads 0 and ignores writes;
//! - the MSI and MSI-X capabilities, whose hardware registers the host programs when
//!   userspace enables vectors through `VFIO_DEVICE_SET_IRQS`: userspace sees and writes its
//!   own enable, function-mask, multiple-message-enable, address, data and mask values (which
//!   it emulates for its guest); the capability layout, table and PBA locations and pending
//!   bits read from the hardware; writes never reach it. (vfio-pci differs in details that
//!   VMMs do not rely on, since they emulate these registers: it passes the MSI mask bits
//!   through, clears the MSI enable bit while no vectors are enabled, and caps the
//!   multiple-message enable at the vectors allocated rather than at the capability's.)
//!
//! Everything else passes through to the hardware. This module is pure logic: the VFIO
//! device reads the hardware dword and lets [`VirtConfig::read`] overlay it.

/// The offset of the vendor ID register.
pub const VENDOR_ID: u16 = 0x00;
/// The offset of the device ID register.
pub const DEVICE_ID: u16 = 0x02;
/// The offset of BAR0; BAR5 is at `0x24`.
pub const BAR0: u16 = 0x10;
/// The offset of the expansion ROM BAR.
pub const ROM_BAR: u16 = 0x30;

/// What a BAR decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// No BAR (or the upper half of a 64-bit BAR, see [`VirtConfig::new`]).
    Absent,
    /// I/O space.
    Io,
    /// 32-bit memory space.
    Mem32 {
        /// Prefetchable.
        prefetch: bool,
    },
    /// 64-bit memory space: this BAR and the next register.
    Mem64 {
        /// Prefetchable.
        prefetch: bool,
    },
}

/// One BAR as the VF has it: its kind and size (a power of two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// What the BAR decodes.
    pub kind: BarKind,
    /// Its size in bytes; 0 for an absent BAR.
    pub size: u64,
}

impl Bar {
    /// No BAR.
    pub const ABSENT: Bar = Bar {
        kind: BarKind::Absent,
        size: 0,
    };
}

/// How one 32-bit BAR register behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BarReg {
    /// The address bits a write can set.
    mask: u32,
    /// The read-only type bits.
    flags: u32,
}

/// MSI Message Control: MSI enable.
const MSI_FLAGS_ENABLE: u16 = 0x0001;
/// MSI Message Control: Multiple Message Capable (log2 of the vectors).
const MSI_FLAGS_QMASK: u16 = 0x000e;
/// MSI Message Control: Multiple Message Enable.
const MSI_FLAGS_QSIZE: u16 = 0x0070;
/// MSI Message Control: 64-bit addresses.
const MSI_FLAGS_64BIT: u16 = 0x0080;
/// MSI Message Control: per-vector masking.
const MSI_FLAGS_MASKBIT: u16 = 0x0100;
/// MSI-X Message Control: function mask and enable.
const MSIX_FLAGS_VIRT: u16 = 0xc000;

/// The MSI capability as userspace sees it.
#[derive(Clone, Debug)]
struct MsiCap {
    /// Config-space offset of the capability (dword aligned).
    off: u16,
    /// The hardware Message Control: which registers exist.
    hw_flags: u16,
    /// The enable and multiple-message-enable bits userspace wrote.
    flags: u16,
    /// Address low, address high, data, mask bits, as userspace wrote them.
    regs: [u32; 4],
}

/// One emulated config dword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reg {
    /// Vendor and device ID.
    Ids,
    /// BAR `i`.
    Bar(usize),
    /// The expansion ROM BAR.
    Rom,
    /// The first dword of the MSI-X capability (ID, next, Message Control).
    MsixCtrl,
    /// The MSI-X table and PBA location registers (read-only).
    MsixLocation,
    /// The first dword of the MSI capability.
    MsiCtrl,
    /// MSI register `i` of [`MsiCap::regs`].
    Msi(usize),
    /// MSI pending bits: read from the hardware, writes dropped.
    MsiPending,
}

/// The emulated registers of a VF's configuration space.
#[derive(Clone, Debug)]
pub struct VirtConfig {
    vendor: u16,
    device: u16,
    regs: [BarReg; 6],
    /// The last values written to the BAR registers.
    bar_values: [u32; 6],
    /// The MSI-X capability's offset and the Message Control bits userspace wrote.
    msix: Option<(u16, u16)>,
    msi: Option<MsiCap>,
}

/// `old` with the `len` (1, 2 or 4) bytes at byte `off & 3` of the dword replaced by `val`.
fn merge(old: u32, off: u16, len: u16, val: u32) -> u32 {
    let shift = u32::from(off & 3) * 8;
    let mask: u32 = match len {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    } << shift;
    (old & !mask) | ((val << shift) & mask)
}

impl VirtConfig {
    /// Creates the virtual header for a function with these IDs and BARs.
    ///
    /// For a 64-bit BAR at index `i`, the entry at `i + 1` is ignored: that register is the
    /// upper half. A size that is not a power of two is rounded up, as BAR sizing requires.
    pub fn new(vendor: u16, device: u16, bars: &[Bar; 6]) -> Self {
        let mut regs = [BarReg { mask: 0, flags: 0 }; 6];
        let mut i = 0;
        while i < 6 {
            let bar = bars[i];
            let size = if bar.size == 0 {
                0
            } else {
                bar.size.checked_next_power_of_two().unwrap_or(0)
            };
            // `!(size - 1)`: the address bits of a naturally aligned BAR of this size.
            let addr_mask = if size == 0 { 0 } else { !(size - 1) };
            match bar.kind {
                BarKind::Absent => {}
                _ if size == 0 => {}
                BarKind::Io => {
                    regs[i] = BarReg {
                        mask: (addr_mask as u32) & !0x3,
                        flags: 0x1,
                    };
                }
                BarKind::Mem32 { prefetch } => {
                    regs[i] = BarReg {
                        mask: (addr_mask as u32) & !0xf,
                        flags: if prefetch { 0x8 } else { 0 },
                    };
                }
                BarKind::Mem64 { prefetch } => {
                    regs[i] = BarReg {
                        mask: (addr_mask as u32) & !0xf,
                        flags: 0x4 | if prefetch { 0x8 } else { 0 },
                    };
                    if i + 1 < 6 {
                        regs[i + 1] = BarReg {
                            mask: (addr_mask >> 32) as u32,
                            flags: 0,
                        };
                        i += 1;
                    }
                }
            }
            i += 1;
        }
        Self {
            vendor,
            device,
            regs,
            bar_values: [0; 6],
            msix: None,
            msi: None,
        }
    }

    /// Emulates the MSI-X capability at `off` (dword aligned, as capability pointers are).
    pub fn with_msix(mut self, off: u16) -> Self {
        self.msix = Some((off & !3, 0));
        self
    }

    /// Emulates the MSI capability at `off`, whose hardware Message Control is `hw_flags`.
    pub fn with_msi(mut self, off: u16, hw_flags: u16) -> Self {
        self.msi = Some(MsiCap {
            off: off & !3,
            hw_flags,
            flags: 0,
            regs: [0; 4],
        });
        self
    }

    /// The emulated register at dword offset `off`, if that dword is emulated.
    fn reg(&self, off: u16) -> Option<Reg> {
        match off {
            VENDOR_ID => return Some(Reg::Ids),
            0x10..=0x27 => return Some(Reg::Bar(usize::from((off - BAR0) / 4))),
            ROM_BAR => return Some(Reg::Rom),
            _ => {}
        }
        if let Some((cap, _)) = self.msix {
            match off.checked_sub(cap) {
                Some(0) => return Some(Reg::MsixCtrl),
                Some(4 | 8) => return Some(Reg::MsixLocation),
                _ => {}
            }
        }
        let msi = self.msi.as_ref()?;
        let is64 = msi.hw_flags & MSI_FLAGS_64BIT != 0;
        let maskable = msi.hw_flags & MSI_FLAGS_MASKBIT != 0;
        // Address low, [address high], data, [mask, pending].
        let data = if is64 { 0xc } else { 0x8 };
        match off.checked_sub(msi.off)? {
            0 => Some(Reg::MsiCtrl),
            4 => Some(Reg::Msi(0)),
            8 if is64 => Some(Reg::Msi(1)),
            d if d == data => Some(Reg::Msi(2)),
            d if maskable && d == data + 4 => Some(Reg::Msi(3)),
            d if maskable && d == data + 8 => Some(Reg::MsiPending),
            _ => None,
        }
    }

    /// The value of the dword at `off` (dword aligned) given the hardware's.
    fn virt_dword(&self, off: u16, hw: u32) -> u32 {
        let Some(reg) = self.reg(off) else {
            return hw;
        };
        match reg {
            Reg::Ids => u32::from(self.vendor) | (u32::from(self.device) << 16),
            Reg::Bar(i) => {
                let r = self.regs[i];
                (self.bar_values[i] & r.mask) | r.flags
            }
            Reg::Rom => 0,
            Reg::MsixCtrl => {
                let flags = self.msix.map_or(0, |(_, f)| f);
                let virt = u32::from(MSIX_FLAGS_VIRT) << 16;
                (hw & !virt) | ((u32::from(flags) << 16) & virt)
            }
            Reg::MsiCtrl => {
                let flags = self.msi.as_ref().map_or(0, |m| m.flags);
                let virt = u32::from(MSI_FLAGS_ENABLE | MSI_FLAGS_QSIZE) << 16;
                (hw & !virt) | ((u32::from(flags) << 16) & virt)
            }
            Reg::Msi(i) => self.msi.as_ref().map_or(0, |m| m.regs[i]),
            Reg::MsixLocation | Reg::MsiPending => hw,
        }
    }

    /// Returns what a read of `len` (1, 2 or 4) bytes at `off` (aligned to `len`) sees, given
    /// the hardware's dword at `off & !3`.
    pub fn read(&self, off: u16, len: u16, hw_dword: u32) -> u32 {
        let dword = self.virt_dword(off & !3, hw_dword);
        let shift = u32::from(off & 3) * 8;
        let v = dword >> shift;
        match len {
            1 => v & 0xff,
            2 => v & 0xffff,
            _ => v,
        }
    }

    /// Handles a write of `len` (1, 2 or 4) bytes of `val` at `off` (aligned to `len`).
    ///
    /// Returns `true` if the write went to an emulated register (and must not reach the
    /// hardware), `false` if it is to be passed through.
    pub fn write(&mut self, off: u16, len: u16, val: u32) -> bool {
        let Some(reg) = self.reg(off & !3) else {
            return false;
        };
        match reg {
            Reg::Bar(i) => self.bar_values[i] = merge(self.bar_values[i], off, len, val),
            Reg::MsixCtrl => {
                if let Some((_, flags)) = self.msix.as_mut() {
                    let dword = merge(u32::from(*flags) << 16, off, len, val);
                    *flags = (dword >> 16) as u16 & MSIX_FLAGS_VIRT;
                }
            }
            Reg::MsiCtrl => {
                if let Some(msi) = self.msi.as_mut() {
                    let dword = merge(u32::from(msi.flags) << 16, off, len, val);
                    let mut flags = (dword >> 16) as u16 & (MSI_FLAGS_ENABLE | MSI_FLAGS_QSIZE);
                    // No more vectors than the function is capable of (as vfio-pci).
                    let capable = (msi.hw_flags & MSI_FLAGS_QMASK) >> 1;
                    if (flags & MSI_FLAGS_QSIZE) >> 4 > capable {
                        flags = (flags & !MSI_FLAGS_QSIZE) | (capable << 4);
                    }
                    msi.flags = flags;
                }
            }
            Reg::Msi(i) => {
                if let Some(msi) = self.msi.as_mut() {
                    msi.regs[i] = merge(msi.regs[i], off, len, val);
                }
            }
            // IDs, the ROM BAR, the MSI-X locations and MSI pending bits are read-only.
            Reg::Ids | Reg::Rom | Reg::MsixLocation | Reg::MsiPending => {}
        }
        true
    }
}
