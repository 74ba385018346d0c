// SPDX-License-Identifier: GPL-2.0

//! The virtual PCI configuration space of a wrapped function: a per-byte permission model.
//!
//! C reference for the behaviour: `drivers/vfio/pci/vfio_pci_config.c`.
//!
//! Every byte of config space has two masks, as in vfio-pci:
//!
//! - `virt`: the bits userspace reads and writes in the virtual copy (`vconfig`), never in
//!   the hardware;
//! - `write`: the bits userspace may write. Writable bits that are not virtual go to the
//!   hardware (read-modify-write); a write to a bit that is neither is dropped.
//!
//! Reads return the virtual bits from `vconfig` and the others from the hardware.
//!
//! The masks come from a table per capability, laid over the function's capability chains
//! when the device is created ([`VirtConfig::new`], from a snapshot of the hardware config
//! space, so this module is pure logic):
//!
//! - the header as vfio-pci has it (IDs, BARs, ROM BAR, capability pointer, interrupt line and
//!   pin virtual; COMMAND writable with INTx-disable virtual, and memory enable virtual for
//!   functions that do not decode by it, such as VFs; STATUS read-only with its capability
//!   bit virtual);
//! - PM, VPD, PCI-X, PCI Express, Advanced Features, MSI, MSI-X, AER and Power Budgeting
//!   with their own tables; vendor-specific capabilities writable (as vfio-pci) except their
//!   header;
//! - every other capability read-only, its `next` pointer virtual;
//! - capabilities vfio-pci hides (unknown IDs and those of length 0, PASID among them) cut
//!   out of the chains, and their headers read-only;
//! - bytes outside every capability (gaps) read and written raw, as vfio-pci does (some
//!   devices keep registers there).
//!
//! Writes that must not reach the hardware raw come back as [`Action`]s for the device to
//! carry out through the kernel: a power-state change, a function-level reset, a new maximum
//! read request size, a VPD access, a change of memory decoding. `docs/config-space.md` lists
//! the tables (and a KUnit case checks it against them).

use kernel::{
    bindings,
    prelude::*, //
};

/// The offset of the vendor ID register.
pub const VENDOR_ID: u16 = 0x00;
/// The offset of the device ID register.
pub const DEVICE_ID: u16 = 0x02;
/// The offset of the command register.
pub const COMMAND: u16 = 0x04;
/// The offset of the status register.
pub const STATUS: u16 = 0x06;
/// The offset of BAR0; BAR5 is at `0x24`.
pub const BAR0: u16 = 0x10;
/// The offset of the expansion ROM BAR.
pub const ROM_BAR: u16 = 0x30;
/// The offset of the capability pointer.
pub const CAP_PTR: u16 = 0x34;
/// The offset of the interrupt pin register.
pub const INTERRUPT_PIN: u16 = 0x3d;
/// The size of the standard header.
pub const HEADER_SIZE: u16 = 0x40;
/// The start of extended config space.
pub const EXT_START: u16 = 0x100;

/// `bindings` constants as the widths the tables use (all are small: lossless).
const fn b16(v: u32) -> u16 {
    v as u16
}

/// Command register: memory space enable.
pub const COMMAND_MEMORY: u16 = b16(bindings::PCI_COMMAND_MEMORY);
const COMMAND_IO: u16 = b16(bindings::PCI_COMMAND_IO);
const COMMAND_INTX_DISABLE: u16 = b16(bindings::PCI_COMMAND_INTX_DISABLE);
const STATUS_CAP_LIST: u16 = b16(bindings::PCI_STATUS_CAP_LIST);
const STATUS_INTERRUPT: u16 = b16(bindings::PCI_STATUS_INTERRUPT);

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

/// One BAR as the function has it: its kind and size.
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

    /// Whether the BAR decodes memory space.
    pub fn is_mem(&self) -> bool {
        matches!(self.kind, BarKind::Mem32 { .. } | BarKind::Mem64 { .. }) && self.size > 0
    }
}

/// What the config space is built from, besides the hardware's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Function {
    /// The vendor ID the PCI core knows (a VF reads 0xffff in hardware).
    pub vendor: u16,
    /// The device ID the PCI core knows.
    pub device: u16,
    /// The function does not decode memory by its COMMAND register (a VF: the PF's SR-IOV
    /// capability enables its memory space). Its memory-enable bit is virtual.
    pub no_command_memory: bool,
    /// The BARs as the PCI core sized them.
    pub bars: [Bar; 6],
}

/// Something a config write asks for that the device must do through the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Put the function in this power state (0 = D0 .. 3 = D3hot), as `pci_set_power_state`.
    PowerState(u8),
    /// A function-level reset (PCIe or Advanced Features FLR initiated by the user).
    Reset,
    /// Set the maximum read request size to at least this many bytes (`pcie_set_readrq`,
    /// floored at the function's maximum payload size).
    ReadRq(u32),
    /// The memory-decoding bit of a function that decodes by its COMMAND register changed
    /// to this value (BAR mappings must be revoked before it is cleared).
    MemoryEnable(bool),
    /// A VPD access: read 4 bytes at `addr`, or write `data` there (`pci_read_vpd`,
    /// `pci_write_vpd`); finish with [`VirtConfig::vpd_done`].
    Vpd {
        /// Offset of the VPD capability.
        cap: u16,
        /// The VPD address.
        addr: u16,
        /// `Some(data)` for a write.
        data: Option<u32>,
    },
}

/// The hardware part of a write: read the `len` bytes at the offset, replace the bits of
/// `mask` with those of `val`, write them back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwWrite {
    /// The bits that go to the hardware.
    pub mask: u32,
    /// The value, aligned like `mask`.
    pub val: u32,
}

/// What a config write needs beyond the virtual copy, which it already updated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WritePlan {
    /// Bits for the hardware, if any.
    pub hw: Option<HwWrite>,
    /// Up to two actions (a DEVCTL write can ask for a reset and a new read request size),
    /// to be done in order after the hardware write.
    pub actions: [Option<Action>; 2],
}

impl WritePlan {
    fn push(&mut self, a: Action) {
        if let Some(slot) = self.actions.iter_mut().find(|s| s.is_none()) {
            *slot = Some(a);
        }
    }

    /// The actions, in order.
    pub fn actions(&self) -> impl Iterator<Item = Action> + '_ {
        self.actions.iter().flatten().copied()
    }
}

/// Which table governs a capability's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapKind {
    /// A standard capability (ID in config space below 0x100).
    Std(u8),
    /// An extended capability.
    Ext(u16),
}

/// A capability as laid out in the virtual config space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    /// Its ID.
    pub kind: CapKind,
    /// Its offset.
    pub pos: u16,
    /// Its length in bytes (for a hidden one: the bytes kept read-only).
    pub len: u16,
    /// Cut out of the chain userspace walks.
    pub hidden: bool,
    /// Added by the vendor ([`VirtConfig::add_cap`]): wholly virtual, no side effects.
    pub added: bool,
}

/// Reads little-endian values out of a config-space snapshot; out of range reads 0.
struct Snap<'a>(&'a [u8]);

impl Snap<'_> {
    fn u8(&self, off: usize) -> u8 {
        self.0.get(off).copied().unwrap_or(0)
    }
    fn u16(&self, off: usize) -> u16 {
        u16::from(self.u8(off)) | (u16::from(self.u8(off + 1)) << 8)
    }
    fn u32(&self, off: usize) -> u32 {
        u32::from(self.u16(off)) | (u32::from(self.u16(off + 2)) << 16)
    }
}

/// The length of standard capability `id` at `pos`: 0 hides it (vfio-pci's `pci_cap_length`
/// and `vfio_cap_len`).
fn std_cap_len(s: &Snap<'_>, id: u8, pos: usize) -> u16 {
    let id32 = u32::from(id);
    match id32 {
        bindings::PCI_CAP_ID_PM => b16(bindings::PCI_PM_SIZEOF),
        bindings::PCI_CAP_ID_AGP => b16(bindings::PCI_AGP_SIZEOF),
        bindings::PCI_CAP_ID_VPD => b16(bindings::PCI_CAP_VPD_SIZEOF),
        bindings::PCI_CAP_ID_MSIX => b16(bindings::PCI_CAP_MSIX_SIZEOF),
        bindings::PCI_CAP_ID_AF => b16(bindings::PCI_CAP_AF_SIZEOF),
        bindings::PCI_CAP_ID_MSI => {
            let flags = u32::from(s.u16(pos + bindings::PCI_MSI_FLAGS as usize));
            let mut len = 10;
            if flags & bindings::PCI_MSI_FLAGS_64BIT != 0 {
                len += 4;
            }
            if flags & bindings::PCI_MSI_FLAGS_MASKBIT != 0 {
                len += 10;
            }
            len
        }
        bindings::PCI_CAP_ID_PCIX => {
            let cmd = s.u16(pos + bindings::PCI_X_CMD as usize);
            if (cmd >> 12) & 3 != 0 {
                b16(bindings::PCI_CAP_PCIX_SIZEOF_V2)
            } else {
                b16(bindings::PCI_CAP_PCIX_SIZEOF_V0)
            }
        }
        bindings::PCI_CAP_ID_VNDR => u16::from(s.u8(pos + bindings::PCI_CAP_FLAGS as usize)),
        bindings::PCI_CAP_ID_EXP => {
            let flags = u32::from(s.u16(pos + bindings::PCI_EXP_FLAGS as usize));
            let rc_end =
                (flags & bindings::PCI_EXP_FLAGS_TYPE) >> 4 == bindings::PCI_EXP_TYPE_RC_END;
            let v1 = flags & bindings::PCI_EXP_FLAGS_VERS == 1;
            match (v1, rc_end) {
                (true, true) => 0xc,
                (true, false) => b16(bindings::PCI_CAP_EXP_ENDPOINT_SIZEOF_V1),
                (false, true) => 0x2c,
                (false, false) => b16(bindings::PCI_CAP_EXP_ENDPOINT_SIZEOF_V2),
            }
        }
        bindings::PCI_CAP_ID_HT => {
            if u32::from(s.u8(pos + 3)) & bindings::HT_3BIT_CAP_MASK != 0 {
                b16(bindings::HT_CAP_SIZEOF_SHORT)
            } else {
                b16(bindings::HT_CAP_SIZEOF_LONG)
            }
        }
        bindings::PCI_CAP_ID_SATA => {
            let regs = u32::from(s.u8(pos + bindings::PCI_SATA_REGS as usize))
                & bindings::PCI_SATA_REGS_MASK;
            if regs == bindings::PCI_SATA_REGS_INLINE {
                b16(bindings::PCI_SATA_SIZEOF_LONG)
            } else {
                b16(bindings::PCI_SATA_SIZEOF_SHORT)
            }
        }
        // Slot ID, CompactPCI, debug port, hot-swap, subsystem IDs of bridges, AGP 8x,
        // secure device, ID 0 and unknown IDs: hidden, as vfio-pci.
        _ => 0,
    }
}

/// The length of extended capability `id` at `pos`: 0 hides it (vfio-pci's
/// `pci_ext_cap_length` and `vfio_ext_cap_len`).
fn ext_cap_len(s: &Snap<'_>, id: u16, pos: usize) -> u16 {
    match u32::from(id) {
        bindings::PCI_EXT_CAP_ID_ERR => b16(bindings::PCI_ERR_ROOT_COMMAND),
        bindings::PCI_EXT_CAP_ID_DSN => b16(bindings::PCI_EXT_CAP_DSN_SIZEOF),
        bindings::PCI_EXT_CAP_ID_PWR => b16(bindings::PCI_EXT_CAP_PWR_SIZEOF),
        bindings::PCI_EXT_CAP_ID_ARI => b16(bindings::PCI_EXT_CAP_ARI_SIZEOF),
        bindings::PCI_EXT_CAP_ID_ATS => b16(bindings::PCI_EXT_CAP_ATS_SIZEOF),
        bindings::PCI_EXT_CAP_ID_SRIOV => b16(bindings::PCI_EXT_CAP_SRIOV_SIZEOF),
        bindings::PCI_EXT_CAP_ID_MCAST => b16(bindings::PCI_EXT_CAP_MCAST_ENDPOINT_SIZEOF),
        bindings::PCI_EXT_CAP_ID_PRI => b16(bindings::PCI_EXT_CAP_PRI_SIZEOF),
        bindings::PCI_EXT_CAP_ID_LTR => b16(bindings::PCI_EXT_CAP_LTR_SIZEOF),
        bindings::PCI_EXT_CAP_ID_VNDR => {
            (s.u32(pos + bindings::PCI_VNDR_HEADER as usize) >> 20) as u16 & 0xfff
        }
        bindings::PCI_EXT_CAP_ID_DVSEC => {
            (s.u32(pos + bindings::PCI_DVSEC_HEADER1 as usize) >> 20) as u16 & 0xfff
        }
        bindings::PCI_EXT_CAP_ID_VC
        | bindings::PCI_EXT_CAP_ID_VC9
        | bindings::PCI_EXT_CAP_ID_MFVC => {
            let evcc =
                s.u32(pos + bindings::PCI_VC_PORT_CAP1 as usize) & bindings::PCI_VC_CAP1_EVCC;
            let cap2 = s.u32(pos + bindings::PCI_VC_PORT_CAP2 as usize);
            let phases = if cap2 & bindings::PCI_VC_CAP2_128_PHASE != 0 {
                128
            } else if cap2 & bindings::PCI_VC_CAP2_64_PHASE != 0 {
                64
            } else if cap2 & bindings::PCI_VC_CAP2_32_PHASE != 0 {
                32
            } else {
                0
            };
            let mut len =
                bindings::PCI_CAP_VC_BASE_SIZEOF + (1 + evcc) * bindings::PCI_CAP_VC_PER_VC_SIZEOF;
            if phases != 0 {
                len = len.next_multiple_of(16) + phases * 4 / 8;
            }
            len as u16
        }
        bindings::PCI_EXT_CAP_ID_ACS => {
            let cap = u32::from(s.u8(pos + bindings::PCI_ACS_CAP as usize));
            if cap & bindings::PCI_ACS_EC != 0 {
                let bits = u32::from(s.u8(pos + bindings::PCI_ACS_EGRESS_BITS as usize));
                let bits = if bits != 0 {
                    bits.next_multiple_of(32)
                } else {
                    256
                };
                (8 + bits / 8) as u16
            } else {
                8
            }
        }
        bindings::PCI_EXT_CAP_ID_REBAR => {
            let ctrl = u32::from(s.u8(pos + bindings::PCI_REBAR_CTRL as usize));
            let nbar =
                (ctrl & bindings::PCI_REBAR_CTRL_NBAR_MASK) >> bindings::PCI_REBAR_CTRL_NBAR_SHIFT;
            (4 + nbar * 8) as u16
        }
        bindings::PCI_EXT_CAP_ID_DPA => {
            let sub = u32::from(s.u8(pos + bindings::PCI_DPA_CAP as usize))
                & bindings::PCI_DPA_CAP_SUBSTATE_MASK;
            (bindings::PCI_DPA_BASE_SIZEOF + sub + 1) as u16
        }
        bindings::PCI_EXT_CAP_ID_TPH => {
            let cap = s.u32(pos + bindings::PCI_TPH_CAP as usize);
            if cap & bindings::PCI_TPH_CAP_LOC_MASK == bindings::PCI_TPH_LOC_CAP {
                let sts = (cap & bindings::PCI_TPH_CAP_ST_MASK) >> bindings::PCI_TPH_CAP_ST_SHIFT;
                (bindings::PCI_TPH_BASE_SIZEOF + sts * 2 + 2) as u16
            } else {
                b16(bindings::PCI_TPH_BASE_SIZEOF)
            }
        }
        // Root-complex-only capabilities, MR-IOV, PASID, Secondary PCIe, PMUX and every
        // capability vfio-pci does not know: hidden.
        _ => 0,
    }
}

/// The BAR register masks: the address bits a write keeps and the read-only type bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct BarReg {
    mask: u32,
    flags: u32,
}

fn bar_regs(bars: &[Bar; 6]) -> [BarReg; 6] {
    let mut regs = [BarReg::default(); 6];
    let mut i = 0;
    while i < 6 {
        let bar = bars[i];
        // Sizes that are not powers of two are rounded up, as BAR sizing requires.
        let size = if bar.size == 0 {
            0
        } else {
            bar.size.checked_next_power_of_two().unwrap_or(0)
        };
        let addr_mask = if size == 0 { 0 } else { !(size - 1) };
        match bar.kind {
            _ if size == 0 => {}
            BarKind::Absent => {}
            BarKind::Io => {
                regs[i] = BarReg {
                    mask: (addr_mask as u32) & !0x3,
                    flags: 0x1,
                }
            }
            BarKind::Mem32 { prefetch } => {
                regs[i] = BarReg {
                    mask: (addr_mask as u32) & !0xf,
                    flags: if prefetch { 0x8 } else { 0 },
                }
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
    regs
}

/// The virtual config space of a function.
///
/// # Invariants
///
/// `vconfig`, `init`, `virt` and `write` are `size` bytes long, `size` is 256 or 4096.
pub struct VirtConfig {
    size: usize,
    /// The virtual copy userspace sees.
    vconfig: KVec<u8>,
    /// `vconfig` as it is at every open.
    init: KVec<u8>,
    /// Per byte: the bits read and written in `vconfig`.
    virt: KVec<u8>,
    /// Per byte: the bits userspace may write.
    write: KVec<u8>,
    /// The capabilities, visible and hidden, in chain order (standard first).
    caps: KVec<Cap>,
    bars: [BarReg; 6],
    no_command_memory: bool,
    /// The hardware DEVCAP has FLR / the AF capability has FLR and TP.
    exp_flr: bool,
    af_flr: bool,
}

/// Sets the masks of the `n` bytes at `off` from the little-endian `virt` and `write`.
fn set_perm(virt: &mut [u8], write: &mut [u8], off: usize, n: usize, v: u32, w: u32) {
    for i in 0..n.min(4) {
        if let (Some(pv), Some(pw)) = (virt.get_mut(off + i), write.get_mut(off + i)) {
            *pv = (v >> (8 * i)) as u8;
            *pw = (w >> (8 * i)) as u8;
        }
    }
}

/// Like [`set_perm`] over a range of any length with the same byte masks.
fn set_range(virt: &mut [u8], write: &mut [u8], off: usize, n: usize, v: u8, w: u8) {
    for i in off..off + n {
        if let (Some(pv), Some(pw)) = (virt.get_mut(i), write.get_mut(i)) {
            *pv = v;
            *pw = w;
        }
    }
}

impl VirtConfig {
    /// Builds the virtual config space of `func` from `hw`, a snapshot of its config space
    /// (256 or 4096 bytes: the function's config size).
    pub fn new(func: &Function, hw: &[u8]) -> Result<Self> {
        let size = hw.len();
        if size != 256 && size != 4096 {
            return Err(EINVAL);
        }
        let s = Snap(hw);
        let mut vconfig = KVec::with_capacity(size, GFP_KERNEL_ACCOUNT)?;
        vconfig.extend_from_slice(hw, GFP_KERNEL_ACCOUNT)?;
        let mut virt = KVec::from_elem(0u8, size, GFP_KERNEL_ACCOUNT)?;
        let mut write = KVec::from_elem(0u8, size, GFP_KERNEL_ACCOUNT)?;
        let mut caps = KVec::new();
        let (v, w) = (&mut virt[..], &mut write[..]);

        // Gaps (bytes no capability claims) are raw read/write, as vfio-pci's
        // `unassigned_perms`. Capabilities below overwrite this.
        set_range(
            v,
            w,
            usize::from(HEADER_SIZE),
            size - usize::from(HEADER_SIZE),
            0,
            0xff,
        );
        // A gap byte is marked "raw" by virt 0, write 0xff; the header is its own table.
        set_range(v, w, 0, usize::from(HEADER_SIZE), 0, 0);

        // The header (vfio-pci's `init_pci_cap_basic_perm`).
        set_perm(v, w, 0x00, 4, !0, 0); // vendor and device ID
        let cmd_virt = COMMAND_INTX_DISABLE
            | if func.no_command_memory {
                COMMAND_MEMORY
            } else {
                0
            };
        set_perm(v, w, 0x04, 2, cmd_virt.into(), 0xffff);
        set_perm(v, w, 0x06, 2, STATUS_CAP_LIST.into(), 0);
        set_perm(v, w, 0x0c, 1, 0, 0xff); // cache line size
        set_perm(v, w, 0x0d, 1, 0, 0xff); // latency timer
        set_perm(v, w, 0x0f, 1, 0, 0xff); // BIST
        for bar in 0..7 {
            let off = if bar < 6 {
                0x10 + 4 * bar
            } else {
                usize::from(ROM_BAR)
            };
            set_perm(v, w, off, 4, !0, !0);
        }
        set_perm(v, w, usize::from(CAP_PTR), 1, 0xff, 0);
        set_perm(v, w, 0x3c, 1, 0xff, 0xff); // interrupt line
        set_perm(v, w, 0x3d, 1, 0xff, 0); // interrupt pin

        // The header's virtual values.
        vconfig[0..2].copy_from_slice(&func.vendor.to_le_bytes());
        vconfig[2..4].copy_from_slice(&func.device.to_le_bytes());
        if func.no_command_memory {
            // As vfio-pci: such a function shows memory decoding on, as a PF would after
            // `pci_enable_device`.
            vconfig[4] |= COMMAND_MEMORY as u8;
        }
        vconfig[0x10..0x28].fill(0);
        vconfig[0x30..0x34].fill(0);
        // No INTx is offered (a VF has no pin; emulated INTx is a vendor's).
        vconfig[usize::from(INTERRUPT_PIN)] = 0;

        let mut exp_flr = false;
        let mut af_flr = false;
        let mut has_exp_or_pcix = false;

        // Standard capabilities (vfio-pci's `vfio_cap_init`).
        let mut prev = usize::from(CAP_PTR);
        let mut visible = 0;
        if u32::from(s.u16(usize::from(STATUS))) & bindings::PCI_STATUS_CAP_LIST != 0 {
            let mut pos = usize::from(s.u8(usize::from(CAP_PTR)) & 0xfc);
            let mut loops = (256 - usize::from(HEADER_SIZE)) / 4;
            vconfig[prev] = 0;
            while pos >= usize::from(HEADER_SIZE) && loops > 0 {
                loops -= 1;
                let id = s.u8(pos);
                let next = s.u8(pos + 1) & 0xfc;
                let len = std_cap_len(&s, id, pos);
                let len = len.min((256 - pos) as u16);
                if len == 0 {
                    // Cut out: the previous `next` skips it; its header stays read-only.
                    set_range(v, w, pos, 2, 0, 0);
                    caps.push(
                        Cap {
                            kind: CapKind::Std(id),
                            pos: pos as u16,
                            len: 2,
                            hidden: true,
                            added: false,
                        },
                        GFP_KERNEL_ACCOUNT,
                    )?;
                    pos = usize::from(next);
                    continue;
                }
                vconfig[prev] = pos as u8;
                // Default: read-only, `next` virtual (vfio-pci's `cap_perms` default).
                set_range(v, w, pos, usize::from(len), 0, 0);
                set_perm(v, w, pos + 1, 1, 0xff, 0);
                Self::std_cap_perms(v, w, &mut vconfig, &s, id, pos, len);
                match u32::from(id) {
                    bindings::PCI_CAP_ID_EXP => {
                        has_exp_or_pcix = true;
                        exp_flr = s.u32(pos + bindings::PCI_EXP_DEVCAP as usize)
                            & bindings::PCI_EXP_DEVCAP_FLR
                            != 0;
                    }
                    bindings::PCI_CAP_ID_PCIX => has_exp_or_pcix = len > 8,
                    bindings::PCI_CAP_ID_AF => {
                        let cap = u32::from(s.u8(pos + bindings::PCI_AF_CAP as usize));
                        af_flr = cap & bindings::PCI_AF_CAP_FLR != 0
                            && cap & bindings::PCI_AF_CAP_TP != 0;
                    }
                    _ => {}
                }
                caps.push(
                    Cap {
                        kind: CapKind::Std(id),
                        pos: pos as u16,
                        len,
                        hidden: false,
                        added: false,
                    },
                    GFP_KERNEL_ACCOUNT,
                )?;
                visible += 1;
                prev = pos + 1;
                vconfig[prev] = 0;
                pos = usize::from(next);
            }
        }
        if visible == 0 {
            vconfig[usize::from(CAP_PTR)] = 0;
            let st = u16::from_le_bytes([vconfig[6], vconfig[7]]) & !STATUS_CAP_LIST;
            vconfig[6..8].copy_from_slice(&st.to_le_bytes());
        }

        // Extended capabilities (vfio-pci's `vfio_ecap_init`).
        let ext = usize::from(EXT_START);
        if size > ext && has_exp_or_pcix && s.u32(ext) != 0 && s.u32(ext) != !0 {
            let mut pos = ext;
            let mut loops = (size - ext) / 4;
            let mut prev: Option<usize> = None;
            let mut visible = 0;
            while loops > 0 && pos >= ext && pos + 4 <= size {
                loops -= 1;
                let hdr = s.u32(pos);
                let id = (hdr & 0xffff) as u16;
                let next = ((hdr >> 20) & 0xffc) as usize;
                let len = ext_cap_len(&s, id, pos).min((size - pos) as u16);
                let hidden = len == 0;
                if hidden {
                    // Its header stays read-only (PASID's whole capability: its control
                    // register must not be reachable through the gap it leaves).
                    let keep = if u32::from(id) == bindings::PCI_EXT_CAP_ID_PASID {
                        bindings::PCI_EXT_CAP_PASID_SIZEOF as usize
                    } else {
                        4
                    };
                    set_range(v, w, pos, keep, 0, 0);
                    caps.push(
                        Cap {
                            kind: CapKind::Ext(id),
                            pos: pos as u16,
                            len: 4,
                            hidden: true,
                            added: false,
                        },
                        GFP_KERNEL_ACCOUNT,
                    )?;
                    if let Some(p) = prev {
                        // Not the first: the previous header's `next` skips it.
                        let pd = u32::from_le_bytes([
                            vconfig[p],
                            vconfig[p + 1],
                            vconfig[p + 2],
                            vconfig[p + 3],
                        ]);
                        let pd = (pd & !(0xffc << 20)) | ((next as u32) << 20);
                        vconfig[p..p + 4].copy_from_slice(&pd.to_le_bytes());
                        pos = next;
                        continue;
                    }
                    // The first anchors the chain at 0x100: ID and version 0, `next` kept.
                    set_perm(v, w, pos, 4, !0, 0);
                    let d = hdr & (0xffc << 20);
                    vconfig[pos..pos + 4].copy_from_slice(&d.to_le_bytes());
                } else {
                    set_range(v, w, pos, usize::from(len), 0, 0);
                    // The header dword (with `next`) is virtual for every extended capability.
                    set_perm(v, w, pos, 4, !0, 0);
                    Self::ext_cap_perms(v, w, id, pos, len);
                    caps.push(
                        Cap {
                            kind: CapKind::Ext(id),
                            pos: pos as u16,
                            len,
                            hidden: false,
                            added: false,
                        },
                        GFP_KERNEL_ACCOUNT,
                    )?;
                    visible += 1;
                }
                prev = Some(pos);
                pos = next;
            }
            if visible == 0 {
                vconfig[ext..ext + 4].fill(0);
            }
        }

        let mut init = KVec::with_capacity(size, GFP_KERNEL_ACCOUNT)?;
        init.extend_from_slice(&vconfig, GFP_KERNEL_ACCOUNT)?;
        // INVARIANT: every vector is `size` bytes, `size` is 256 or 4096.
        Ok(Self {
            size,
            vconfig,
            init,
            virt,
            write,
            caps,
            bars: bar_regs(&func.bars),
            no_command_memory: func.no_command_memory,
            exp_flr,
            af_flr,
        })
    }

    /// The per-capability tables of standard capabilities (after the read-only default).
    fn std_cap_perms(
        v: &mut [u8],
        w: &mut [u8],
        vconfig: &mut [u8],
        s: &Snap<'_>,
        id: u8,
        pos: usize,
        len: u16,
    ) {
        match u32::from(id) {
            bindings::PCI_CAP_ID_PM => {
                let pme = bindings::PCI_PM_CAP_PME_MASK;
                set_perm(v, w, pos + 2, 2, pme, 0);
                let ctrl_virt = bindings::PCI_PM_CTRL_PME_ENABLE | bindings::PCI_PM_CTRL_PME_STATUS;
                // The power state is changed through the kernel, not written raw.
                set_perm(
                    v,
                    w,
                    pos + 4,
                    4,
                    ctrl_virt,
                    !(ctrl_virt | bindings::PCI_PM_CTRL_STATE_MASK),
                );
                // The guest cannot handle PME: none supported, none pending, none enabled.
                let pmc = s.u16(pos + 2) & !(pme as u16);
                vconfig[pos + 2..pos + 4].copy_from_slice(&pmc.to_le_bytes());
                let ctrl = s.u16(pos + 4) & !(ctrl_virt as u16);
                vconfig[pos + 4..pos + 6].copy_from_slice(&ctrl.to_le_bytes());
            }
            bindings::PCI_CAP_ID_VPD => {
                set_perm(v, w, pos + 2, 2, 0xffff, 0xffff);
                set_perm(v, w, pos + 4, 4, !0, !0);
            }
            bindings::PCI_CAP_ID_PCIX => {
                set_perm(v, w, pos + bindings::PCI_X_CMD as usize, 2, 0, 0xffff);
                if len > 8 {
                    set_perm(v, w, pos + bindings::PCI_X_ECC_CSR as usize, 4, 0, !0);
                }
            }
            bindings::PCI_CAP_ID_VNDR => {
                // Writable to the hardware, as vfio-pci; the length byte stays read-only.
                set_range(v, w, pos + 3, usize::from(len).saturating_sub(3), 0, 0xff);
            }
            bindings::PCI_CAP_ID_EXP => {
                let dc_virt = bindings::PCI_EXP_DEVCTL_BCR_FLR
                    | bindings::PCI_EXP_DEVCTL_PAYLOAD
                    | bindings::PCI_EXP_DEVCTL_READRQ;
                set_perm(
                    v,
                    w,
                    pos + bindings::PCI_EXP_DEVCTL as usize,
                    2,
                    dc_virt,
                    !bindings::PCI_EXP_DEVCTL_PHANTOM & 0xffff,
                );
                if usize::from(len) > bindings::PCI_EXP_DEVCTL2 as usize {
                    set_perm(
                        v,
                        w,
                        pos + bindings::PCI_EXP_DEVCTL2 as usize,
                        2,
                        0,
                        !bindings::PCI_EXP_DEVCTL2_ARI & 0xffff,
                    );
                }
            }
            bindings::PCI_CAP_ID_AF => {
                set_perm(
                    v,
                    w,
                    pos + bindings::PCI_AF_CTRL as usize,
                    1,
                    bindings::PCI_AF_CTRL_FLR,
                    bindings::PCI_AF_CTRL_FLR,
                );
            }
            bindings::PCI_CAP_ID_MSI => {
                // The host owns MSI: userspace reads and writes its own enable, multiple
                // message enable, address, data and mask bits; pending bits read from the
                // hardware. Nothing reaches it.
                let flags = u32::from(s.u16(pos + 2));
                let user = bindings::PCI_MSI_FLAGS_ENABLE | bindings::PCI_MSI_FLAGS_QSIZE;
                set_perm(v, w, pos + 2, 2, user, user);
                vconfig[pos + 2..pos + 4].copy_from_slice(&((flags & !user) as u16).to_le_bytes());
                let is64 = flags & bindings::PCI_MSI_FLAGS_64BIT != 0;
                let mut regs = pos + 4;
                let nregs = if is64 { 2 } else { 1 };
                for _ in 0..nregs {
                    set_perm(v, w, regs, 4, !0, !0);
                    vconfig[regs..regs + 4].fill(0);
                    regs += 4;
                }
                set_perm(v, w, regs, 2, 0xffff, 0xffff); // data
                vconfig[regs..regs + 2].fill(0);
                if flags & bindings::PCI_MSI_FLAGS_MASKBIT != 0 {
                    // (2 reserved bytes after the data, then mask and pending.)
                    let mask = regs + 4;
                    set_perm(v, w, mask, 4, !0, !0);
                    vconfig[mask..mask + 4].fill(0);
                }
            }
            bindings::PCI_CAP_ID_MSIX => {
                let user = bindings::PCI_MSIX_FLAGS_ENABLE | bindings::PCI_MSIX_FLAGS_MASKALL;
                set_perm(v, w, pos + 2, 2, user, user);
                let flags = s.u16(pos + 2) & !(user as u16);
                vconfig[pos + 2..pos + 4].copy_from_slice(&flags.to_le_bytes());
            }
            _ => {}
        }
    }

    /// The per-capability tables of extended capabilities (after the read-only default
    /// with a virtual header).
    fn ext_cap_perms(v: &mut [u8], w: &mut [u8], id: u16, pos: usize, len: u16) {
        match u32::from(id) {
            bindings::PCI_EXT_CAP_ID_ERR => {
                let unc = bindings::PCI_ERR_UNC_UND
                    | bindings::PCI_ERR_UNC_DLP
                    | bindings::PCI_ERR_UNC_SURPDN
                    | bindings::PCI_ERR_UNC_POISON_TLP
                    | bindings::PCI_ERR_UNC_FCP
                    | bindings::PCI_ERR_UNC_COMP_TIME
                    | bindings::PCI_ERR_UNC_COMP_ABORT
                    | bindings::PCI_ERR_UNC_UNX_COMP
                    | bindings::PCI_ERR_UNC_RX_OVER
                    | bindings::PCI_ERR_UNC_MALF_TLP
                    | bindings::PCI_ERR_UNC_ECRC
                    | bindings::PCI_ERR_UNC_UNSUP
                    | bindings::PCI_ERR_UNC_ACSV
                    | bindings::PCI_ERR_UNC_INTN
                    | bindings::PCI_ERR_UNC_MCBTLP
                    | bindings::PCI_ERR_UNC_ATOMEG
                    | bindings::PCI_ERR_UNC_TLPPRE;
                for r in [
                    bindings::PCI_ERR_UNCOR_STATUS,
                    bindings::PCI_ERR_UNCOR_MASK,
                    bindings::PCI_ERR_UNCOR_SEVER,
                ] {
                    set_perm(v, w, pos + r as usize, 4, 0, unc);
                }
                let cor = bindings::PCI_ERR_COR_RCVR
                    | bindings::PCI_ERR_COR_BAD_TLP
                    | bindings::PCI_ERR_COR_BAD_DLLP
                    | bindings::PCI_ERR_COR_REP_ROLL
                    | bindings::PCI_ERR_COR_REP_TIMER
                    | bindings::PCI_ERR_COR_ADV_NFAT
                    | bindings::PCI_ERR_COR_INTERNAL
                    | bindings::PCI_ERR_COR_LOG_OVER;
                for r in [bindings::PCI_ERR_COR_STATUS, bindings::PCI_ERR_COR_MASK] {
                    set_perm(v, w, pos + r as usize, 4, 0, cor);
                }
                let ecrc = bindings::PCI_ERR_CAP_ECRC_GENE | bindings::PCI_ERR_CAP_ECRC_CHKE;
                set_perm(v, w, pos + bindings::PCI_ERR_CAP as usize, 4, 0, ecrc);
            }
            bindings::PCI_EXT_CAP_ID_PWR => {
                set_perm(v, w, pos + bindings::PCI_PWR_DATA as usize, 1, 0, 0xff);
            }
            bindings::PCI_EXT_CAP_ID_VNDR | bindings::PCI_EXT_CAP_ID_DVSEC => {
                // Writable to the hardware after the headers, as vfio-pci.
                let body = if u32::from(id) == bindings::PCI_EXT_CAP_ID_DVSEC {
                    10
                } else {
                    8
                };
                set_range(
                    v,
                    w,
                    pos + body,
                    usize::from(len).saturating_sub(body),
                    0,
                    0xff,
                );
            }
            _ => {}
        }
    }

    /// The config space size (256 or 4096).
    pub fn size(&self) -> u16 {
        // INVARIANT (used): at most 4096.
        self.size as u16
    }

    /// The capabilities, in chain order, hidden ones included.
    pub fn caps(&self) -> &[Cap] {
        &self.caps
    }

    /// The visible capability `kind`, if there is one.
    pub fn find(&self, kind: CapKind) -> Option<Cap> {
        self.caps
            .iter()
            .find(|c| c.kind == kind && !c.hidden)
            .copied()
    }

    /// Puts the virtual config space back as it was created (at every open).
    pub fn reset(&mut self) {
        self.vconfig.copy_from_slice(&self.init);
    }

    /// Whether the function decodes memory, as far as userspace controls it: always for a
    /// function that does not decode by its COMMAND register (a VF, as vfio-pci), else the
    /// memory-enable bit userspace last wrote.
    pub fn memory_enabled(&self) -> bool {
        self.no_command_memory || self.vconfig[usize::from(COMMAND)] & COMMAND_MEMORY as u8 != 0
    }

    /// Checks an access: `len` 1, 2 or 4, aligned, inside config space.
    fn check(&self, off: u16, len: u16) -> Result<usize> {
        let off = usize::from(off);
        match len {
            1 | 2 | 4 if off % usize::from(len) == 0 && off + usize::from(len) <= self.size => {
                Ok(off)
            }
            _ => Err(EINVAL),
        }
    }

    fn mask(masks: &[u8], off: usize, len: u16) -> u32 {
        masks[off..off + usize::from(len)]
            .iter()
            .rev()
            .fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
    }

    fn vbytes(&self, off: usize, len: u16) -> u32 {
        Self::mask(&self.vconfig, off, len)
    }

    fn set_vbytes(&mut self, off: usize, len: u16, val: u32) {
        for i in 0..usize::from(len) {
            self.vconfig[off + i] = (val >> (8 * i)) as u8;
        }
    }

    /// The bits of an access of `len` bytes at `off` that come from the hardware: read the
    /// hardware only when this is not 0. 0 for an invalid access.
    pub fn hw_mask(&self, off: u16, len: u16) -> u32 {
        let Ok(o) = self.check(off, len) else {
            return 0;
        };
        let full = if len == 4 {
            !0
        } else {
            (1u32 << (8 * len)) - 1
        };
        full & !Self::mask(&self.virt, o, len)
    }

    /// What a read of `len` (1, 2 or 4) bytes at `off` (aligned) returns, given the
    /// hardware's value of the same bytes `hw` (only its [`VirtConfig::hw_mask`] bits are
    /// used). `EINVAL` for an access that is not aligned or not inside config space.
    pub fn read(&self, off: u16, len: u16, hw: u32) -> Result<u32> {
        let o = self.check(off, len)?;
        let virt = Self::mask(&self.virt, o, len);
        let mut val = (hw & !virt) | (self.vbytes(o, len) & virt);
        // The BARs read what was written, masked by their size, with their type bits.
        if (0x10..0x28).contains(&off) || (ROM_BAR..ROM_BAR + 4).contains(&off) {
            let base = o & !3;
            let dword = if base == usize::from(ROM_BAR) {
                0
            } else {
                let r = self.bars[(base - 0x10) / 4];
                (self.vbytes(base, 4) & r.mask) | r.flags
            };
            let shift = 8 * (o - base);
            let full = if len == 4 {
                !0
            } else {
                (1u32 << (8 * len)) - 1
            };
            val = (dword >> shift) & full;
        }
        Ok(val)
    }

    /// Carries out a userspace write of `len` (1, 2 or 4) bytes of `val` at `off` (aligned):
    /// updates the virtual copy and returns what the device must do with the hardware.
    /// `EINVAL` for an access that is not aligned or not inside config space.
    pub fn write(&mut self, off: u16, len: u16, val: u32) -> Result<WritePlan> {
        let o = self.check(off, len)?;
        let full = if len == 4 {
            !0
        } else {
            (1u32 << (8 * len)) - 1
        };
        let val = val & full;
        let virt = Self::mask(&self.virt, o, len);
        let write = Self::mask(&self.write, o, len);
        let mut plan = WritePlan::default();
        if write == 0 {
            return Ok(plan);
        }
        let base = o & !3;
        let old_dword = self.vbytes(base, 4);
        if write & virt != 0 {
            let old = self.vbytes(o, len);
            self.set_vbytes(o, len, (old & !(write & virt)) | (val & write & virt));
        }
        if write & !virt != 0 {
            plan.hw = Some(HwWrite {
                mask: write & !virt,
                val,
            });
        }
        self.after_write(o, len, val, old_dword, &mut plan);
        Ok(plan)
    }

    /// Whether the write of `len` bytes at `o` touched byte `at`.
    fn touches(o: usize, len: u16, at: usize) -> bool {
        (o..o + usize::from(len)).contains(&at)
    }

    /// The side effects of a write: the registers vfio-pci gives a `writefn`.
    ///
    /// `old_dword` is the virtual dword holding the access, before the write.
    fn after_write(&mut self, o: usize, len: u16, val: u32, old_dword: u32, plan: &mut WritePlan) {
        let base = o & !3;
        // The old virtual value of the register at `reg`, which lies in the written dword.
        let old_at = |reg: usize| old_dword >> (8 * (reg - base));
        // COMMAND: remember memory and I/O enable; a function that decodes by it stops
        // decoding when userspace clears memory enable.
        if Self::touches(o, len, usize::from(COMMAND)) {
            let new = (val >> (8 * (usize::from(COMMAND) - o))) as u8;
            let old = old_at(usize::from(COMMAND)) as u8;
            let tracked = (COMMAND_MEMORY | COMMAND_IO) as u8;
            let c = usize::from(COMMAND);
            self.vconfig[c] = (self.vconfig[c] & !tracked) | (new & tracked);
            let mem = COMMAND_MEMORY as u8;
            let (was, now) = (old & mem != 0, new & mem != 0);
            if !self.no_command_memory && was != now {
                plan.push(Action::MemoryEnable(now));
            }
        }
        let Some(cap) = self
            .caps
            .iter()
            .find(|c| {
                !c.hidden && usize::from(c.pos) <= o && o < usize::from(c.pos) + usize::from(c.len)
            })
            .copied()
        else {
            return;
        };
        if cap.added {
            return;
        }
        let pos = usize::from(cap.pos);
        match cap.kind {
            CapKind::Std(id) => match u32::from(id) {
                bindings::PCI_CAP_ID_PM => {
                    let ctrl = pos + bindings::PCI_PM_CTRL as usize;
                    if Self::touches(o, len, ctrl) {
                        let state = (val >> (8 * (ctrl - o))) as u8 & 3;
                        plan.push(Action::PowerState(state));
                    }
                }
                bindings::PCI_CAP_ID_EXP => {
                    let dc = pos + bindings::PCI_EXP_DEVCTL as usize;
                    if Self::touches(o, len, dc) || Self::touches(o, len, dc + 1) {
                        let mut ctrl = self.vbytes(dc, 2);
                        if ctrl & bindings::PCI_EXP_DEVCTL_BCR_FLR != 0 {
                            // Always reads 0; a reset only if the function has PCIe FLR.
                            ctrl &= !bindings::PCI_EXP_DEVCTL_BCR_FLR;
                            self.set_vbytes(dc, 2, ctrl);
                            if self.exp_flr {
                                plan.push(Action::Reset);
                            }
                        }
                        let old_rq = old_at(dc) & bindings::PCI_EXP_DEVCTL_READRQ;
                        let rq = ctrl & bindings::PCI_EXP_DEVCTL_READRQ;
                        if rq != old_rq {
                            plan.push(Action::ReadRq(128 << (rq >> 12)));
                        }
                    }
                }
                bindings::PCI_CAP_ID_AF => {
                    let ctrl = pos + bindings::PCI_AF_CTRL as usize;
                    if Self::touches(o, len, ctrl)
                        && self.vconfig[ctrl] & bindings::PCI_AF_CTRL_FLR as u8 != 0
                    {
                        self.vconfig[ctrl] &= !(bindings::PCI_AF_CTRL_FLR as u8);
                        if self.af_flr {
                            plan.push(Action::Reset);
                        }
                    }
                }
                bindings::PCI_CAP_ID_VPD => {
                    // The upper byte of the address register carries the flag: that write
                    // starts the access.
                    if Self::touches(o, len, pos + 3) {
                        let addr = self.vbytes(pos + 2, 2) as u16;
                        let flag = bindings::PCI_VPD_ADDR_F as u16;
                        let data = (addr & flag != 0).then(|| self.vbytes(pos + 4, 4));
                        plan.push(Action::Vpd {
                            cap: cap.pos,
                            addr: addr & !flag,
                            data,
                        });
                    }
                }
                bindings::PCI_CAP_ID_MSI => {
                    // No more vectors than the function is capable of (as vfio-pci).
                    let f = pos + 2;
                    if Self::touches(o, len, f) {
                        let flags = self.vbytes(f, 2);
                        let capable = (flags & bindings::PCI_MSI_FLAGS_QMASK) >> 1;
                        let qsize = (flags & bindings::PCI_MSI_FLAGS_QSIZE) >> 4;
                        if qsize > capable {
                            let flags = (flags & !bindings::PCI_MSI_FLAGS_QSIZE) | (capable << 4);
                            self.set_vbytes(f, 2, flags);
                        }
                    }
                }
                _ => {}
            },
            CapKind::Ext(_) => {}
        }
    }

    /// Takes memory and I/O enable of a function that decodes by its COMMAND register from
    /// the hardware's COMMAND (at open, after the function was enabled, as vfio-pci builds
    /// its virtual copy then).
    pub fn sync_command(&mut self, hw_cmd: u16) {
        if self.no_command_memory {
            return;
        }
        let c = usize::from(COMMAND);
        let tracked = (COMMAND_MEMORY | COMMAND_IO) as u8;
        self.vconfig[c] = (self.vconfig[c] & !tracked) | (hw_cmd as u8 & tracked);
    }

    /// Finishes a VPD access started by [`Action::Vpd`]: a read's data (`None` if it
    /// failed: the flag is then left as it is, and the user's driver times out, as with
    /// vfio-pci).
    pub fn vpd_done(&mut self, cap: u16, read_data: Option<u32>, ok: bool) {
        let pos = usize::from(cap);
        if pos + 8 > self.size || !ok {
            return;
        }
        if let Some(d) = read_data {
            self.set_vbytes(pos + 4, 4, d);
        }
        let addr = self.vbytes(pos + 2, 2) ^ bindings::PCI_VPD_ADDR_F;
        self.set_vbytes(pos + 2, 2, addr);
    }

    /// The treatment of byte `off`, for documentation and tests: `(virt, write)` masks.
    pub fn perm(&self, off: u16) -> Option<(u8, u8)> {
        let o = usize::from(off);
        Some((*self.virt.get(o)?, *self.write.get(o)?))
    }

    // --- What a vendor changes (at mdev create, before the first open) ----------------

    /// Presents an (emulated) INTx pin: the interrupt pin reads INTA, and STATUS's interrupt
    /// status bit is virtual, set with [`VirtConfig::set_intx_status`].
    pub fn present_intx(&mut self) {
        let pin = usize::from(INTERRUPT_PIN);
        self.vconfig[pin] = 1;
        self.init[pin] = 1;
        let st = usize::from(STATUS);
        self.virt[st] |= STATUS_INTERRUPT as u8;
        self.vconfig[st] &= !(STATUS_INTERRUPT as u8);
        self.init[st] = self.vconfig[st];
    }

    /// Sets STATUS's interrupt status bit (the emulated INTx line's level).
    pub fn set_intx_status(&mut self, asserted: bool) {
        let st = usize::from(STATUS);
        if asserted {
            self.vconfig[st] |= STATUS_INTERRUPT as u8;
        } else {
            self.vconfig[st] &= !(STATUS_INTERRUPT as u8);
        }
    }

    /// Whether the user set INTx-disable in COMMAND (virtual for every function).
    pub fn intx_disabled(&self) -> bool {
        u32::from(self.vconfig[usize::from(COMMAND) + 1]) << 8 & u32::from(COMMAND_INTX_DISABLE)
            != 0
    }

    /// Makes the `len` bytes (1, 2 or 4, aligned) at `off` virtual: they read `value` and
    /// userspace may change the bits of `writable` (in the virtual copy only). `EINVAL` for
    /// an access config space cannot take, or one in a BAR register (sized by the library).
    pub fn set_virtual(&mut self, off: u16, len: u16, value: u32, writable: u32) -> Result {
        let o = self.check(off, len)?;
        if (0x10..0x28).contains(&o)
            || (usize::from(ROM_BAR)..usize::from(ROM_BAR) + 4).contains(&o)
        {
            return Err(EINVAL);
        }
        set_perm(
            &mut self.virt,
            &mut self.write,
            o,
            usize::from(len),
            !0,
            writable,
        );
        self.set_vbytes(o, len, value);
        for i in 0..usize::from(len) {
            self.init[o + i] = self.vconfig[o + i];
        }
        Ok(())
    }

    /// Cuts the visible capability `kind` out of its chain, as vfio-pci hides the ones it
    /// does not know: the chain skips it and its bytes become read-only. MSI and MSI-X, whose
    /// virtualisation the interrupts depend on, cannot be hidden (`EINVAL`); `ENOENT` if there
    /// is no such visible capability.
    pub fn hide(&mut self, kind: CapKind) -> Result {
        if matches!(kind, CapKind::Std(id) if u32::from(id) == bindings::PCI_CAP_ID_MSI
            || u32::from(id) == bindings::PCI_CAP_ID_MSIX)
        {
            return Err(EINVAL);
        }
        let i = self
            .caps
            .iter()
            .position(|c| c.kind == kind && !c.hidden)
            .ok_or(ENOENT)?;
        let cap = self.caps[i];
        let pos = usize::from(cap.pos);
        match kind {
            CapKind::Std(_) => {
                let next = self.vconfig[pos + 1];
                let link = self.std_link_to(pos).ok_or(EINVAL)?;
                self.vconfig[link] = next;
                if self.vconfig[usize::from(CAP_PTR)] == 0 {
                    let st = self.vbytes(usize::from(STATUS), 2) & !u32::from(STATUS_CAP_LIST);
                    self.set_vbytes(usize::from(STATUS), 2, st);
                }
            }
            CapKind::Ext(_) => {
                let hdr = self.vbytes(pos, 4);
                let next = hdr & (0xffc << 20);
                if pos == usize::from(EXT_START) {
                    // The first anchors the chain: ID and version 0, `next` kept.
                    self.set_vbytes(pos, 4, next);
                } else {
                    let link = self.ext_link_to(pos).ok_or(EINVAL)?;
                    let prev = self.vbytes(link, 4);
                    self.set_vbytes(link, 4, (prev & !(0xffc << 20)) | next);
                }
            }
        }
        set_range(
            &mut self.virt,
            &mut self.write,
            pos,
            usize::from(cap.len),
            0,
            0,
        );
        if matches!(kind, CapKind::Ext(_)) && pos == usize::from(EXT_START) {
            set_perm(&mut self.virt, &mut self.write, pos, 4, !0, 0);
        }
        self.caps[i].hidden = true;
        self.init.copy_from_slice(&self.vconfig);
        Ok(())
    }

    /// Adds a wholly virtual capability: `data` (its header's ID and `next` bytes are filled
    /// in; standard: at least 2 bytes, extended: at least 4), of which userspace may write the
    /// bits `writable` gives per byte (shorter: the rest read-only). It is placed in the first
    /// dword-aligned gap that holds it (standard capabilities below 0x100, extended ones
    /// above) and appended to the chain. Returns its offset; `ENOSPC` if no gap holds it.
    pub fn add_cap(&mut self, kind: CapKind, data: &[u8], writable: &[u8]) -> Result<u16> {
        let (lo, hi, hdr) = match kind {
            CapKind::Std(_) => (usize::from(HEADER_SIZE), 256, 2),
            CapKind::Ext(_) => (usize::from(EXT_START), self.size, 4),
        };
        if data.len() < hdr || data.len() > hi - lo {
            return Err(EINVAL);
        }
        let len = data.len();
        let pos = (lo..hi)
            .step_by(4)
            .find(|&p| p + len <= hi && (p..p + len).all(|b| self.is_gap(b)))
            .ok_or(ENOSPC)?;
        for (i, b) in data.iter().enumerate() {
            let w = writable.get(i).copied().unwrap_or(0);
            set_perm(&mut self.virt, &mut self.write, pos + i, 1, 0xff, w.into());
            self.vconfig[pos + i] = *b;
        }
        match kind {
            CapKind::Std(id) => {
                self.vconfig[pos] = id;
                self.vconfig[pos + 1] = 0;
                let last = self.std_link_to(0).ok_or(EINVAL)?;
                self.vconfig[last] = pos as u8;
                let st = self.vbytes(usize::from(STATUS), 2) | u32::from(STATUS_CAP_LIST);
                self.set_vbytes(usize::from(STATUS), 2, st);
            }
            CapKind::Ext(id) => {
                let version = u32::from(data[2] & 0xf);
                self.set_vbytes(pos, 4, u32::from(id) | (version << 16));
                // At 0x100 it is the first (there was no extended capability at all).
                if pos != usize::from(EXT_START) {
                    let last = self.ext_link_to(0).ok_or(EINVAL)?;
                    let prev = self.vbytes(last, 4);
                    self.set_vbytes(last, 4, (prev & !(0xffc << 20)) | ((pos as u32) << 20));
                }
            }
        }
        self.caps.push(
            Cap {
                kind,
                pos: pos as u16,
                len: len as u16,
                hidden: false,
                added: true,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        self.init.copy_from_slice(&self.vconfig);
        Ok(pos as u16)
    }

    /// Whether byte `b` belongs to no capability, visible or hidden, nor to the header.
    fn is_gap(&self, b: usize) -> bool {
        b >= usize::from(HEADER_SIZE)
            && b < self.size
            && !self
                .caps
                .iter()
                .any(|c| (usize::from(c.pos)..usize::from(c.pos) + usize::from(c.len)).contains(&b))
    }

    /// The byte of the virtual standard chain that points at `target` (CAP_PTR or a
    /// `next`); with `target` 0, the one that ends the chain.
    fn std_link_to(&self, target: usize) -> Option<usize> {
        let mut link = usize::from(CAP_PTR);
        for _ in 0..64 {
            let p = usize::from(self.vconfig[link] & 0xfc);
            if p == target {
                return Some(link);
            }
            if p < usize::from(HEADER_SIZE) {
                return None;
            }
            link = p + 1;
        }
        None
    }

    /// The header dword of the virtual extended chain whose `next` is `target`; with `target`
    /// 0, the last one.
    fn ext_link_to(&self, target: usize) -> Option<usize> {
        let mut at = usize::from(EXT_START);
        for _ in 0..1024 {
            let next = ((self.vbytes(at, 4) >> 20) & 0xffc) as usize;
            if next == target {
                return Some(at);
            }
            if next < usize::from(EXT_START) || next + 4 > self.size {
                return None;
            }
            at = next;
        }
        None
    }
}
