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
//!   type bits. An absent BAR (and the ROM BAR of a VF) reads 0 and ignores writes.
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

/// The emulated registers of a VF's configuration header.
#[derive(Clone, Debug)]
pub struct VirtConfig {
    vendor: u16,
    device: u16,
    regs: [BarReg; 6],
    /// The last values written to the BAR registers.
    bar_values: [u32; 6],
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
        }
    }

    /// The value of the emulated dword at `off` (dword aligned), if that dword is emulated.
    fn virt_dword(&self, off: u16, hw: u32) -> u32 {
        match off {
            VENDOR_ID => u32::from(self.vendor) | (u32::from(self.device) << 16),
            0x10..=0x27 => {
                let i = usize::from((off - BAR0) / 4);
                let r = self.regs[i];
                (self.bar_values[i] & r.mask) | r.flags
            }
            ROM_BAR => 0,
            _ => hw,
        }
    }

    /// Whether the byte at `off` is emulated (not passed through).
    pub fn is_virtual(off: u16) -> bool {
        matches!(off, 0x00..=0x03 | 0x10..=0x27 | 0x30..=0x33)
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
        if !Self::is_virtual(off) {
            return false;
        }
        if let 0x10..=0x27 = off {
            let i = usize::from((off - BAR0) / 4);
            let shift = u32::from(off & 3) * 8;
            let mask: u32 = match len {
                1 => 0xff,
                2 => 0xffff,
                _ => 0xffff_ffff,
            } << shift;
            self.bar_values[i] = (self.bar_values[i] & !mask) | ((val << shift) & mask);
        }
        // IDs and the ROM BAR are read-only: the write is dropped.
        true
    }
}
