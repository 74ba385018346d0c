// SPDX-License-Identifier: GPL-2.0

//! The virtual config space (`mdev_pci_wrap::config`): vfio-pci's permission tables, laid
//! over synthetic config spaces, without hardware.

use kernel::prelude::*;
use mdev_pci_wrap::config::{
    Action,
    Bar,
    BarKind,
    CapKind,
    Function,
    HwWrite,
    VirtConfig,
    WritePlan, //
};

fn put(b: &mut [u8], off: usize, val: u32, len: usize) {
    for i in 0..len {
        b[off + i] = (val >> (8 * i)) as u8;
    }
}

/// A 16 KiB 32-bit memory BAR0 and BAR3, as an igbvf has them.
fn igbvf_bars() -> [Bar; 6] {
    let mem = Bar {
        kind: BarKind::Mem32 { prefetch: false },
        size: 0x4000,
    };
    [mem, Bar::ABSENT, Bar::ABSENT, mem, Bar::ABSENT, Bar::ABSENT]
}

fn vf() -> Function {
    Function {
        vendor: 0x8086,
        device: 0x10ca,
        no_command_memory: true,
        bars: igbvf_bars(),
    }
}

fn pf() -> Function {
    Function {
        no_command_memory: false,
        ..vf()
    }
}

// The synthetic function: a VF-like header and these capabilities.
const PM: usize = 0x40;
const VNDR: usize = 0x48;
const MSI: usize = 0x50; // 64-bit, per-vector masking: 24 bytes
const SLOTID: usize = 0x68; // hidden by vfio-pci
const MSIX: usize = 0x70;
const EXP: usize = 0x80; // version 2 endpoint: 52 bytes
const AF: usize = 0xb8;
const VPD: usize = 0xc0;
const GAP: usize = 0xd0; // in no capability
const AER: usize = 0x100;
const SRIOV: usize = 0x140;
const PASID: usize = 0x180; // hidden by vfio-pci
const ACS: usize = 0x1a0;

/// The hardware config space of the synthetic function.
fn hw() -> Result<KVec<u8>> {
    let mut b = KVec::from_elem(0u8, 4096, GFP_KERNEL)?;
    put(&mut b, 0x00, 0xffff_ffff, 4); // a VF's IDs
    put(&mut b, 0x06, 0x0010, 2); // capability list
    put(&mut b, 0x34, PM as u32, 1);
    put(&mut b, 0x3d, 1, 1); // a bogus pin
                             // PM: next VNDR, PMC with PME support, PMCSR D0 with No_Soft_Reset.
    put(&mut b, PM, 0x01 | (VNDR as u32) << 8 | 0xf803 << 16, 4);
    put(&mut b, PM + 4, 0x0008, 2);
    // Vendor-specific, 8 bytes.
    put(&mut b, VNDR, 0x09 | (MSI as u32) << 8 | 8 << 16, 4);
    // MSI: 64-bit, maskable, 4 vectors capable.
    put(&mut b, MSI, 0x05 | (SLOTID as u32) << 8 | 0x0184 << 16, 4);
    put(&mut b, MSI + 0x14, 0x1, 4); // pending
    put(&mut b, SLOTID, 0x04 | (MSIX as u32) << 8, 2);
    // MSI-X: 3 entries, enabled by the host.
    put(&mut b, MSIX, 0x11 | (EXP as u32) << 8 | 0x8002 << 16, 4);
    put(&mut b, MSIX + 4, 0x0000_3003, 4);
    // PCIe v2 endpoint, DEVCAP with FLR, DEVCTL with MRRS 512 (2) and MPS 256 (1).
    put(&mut b, EXP, 0x10 | (AF as u32) << 8 | 0x0002 << 16, 4);
    put(&mut b, EXP + 4, 1 << 28, 4);
    put(&mut b, EXP + 8, 0x2020, 2);
    put(&mut b, EXP + 0x10, 0x0040, 2); // LNKCTL
    put(&mut b, EXP + 0x28, 0x0020, 2); // DEVCTL2 with ARI forwarding
                                        // AF with FLR and TP.
    put(&mut b, AF, 0x13 | (VPD as u32) << 8 | 0x0303 << 16, 4);
    put(&mut b, VPD, 0x03, 2);
    // Extended: AER -> SR-IOV -> PASID -> ACS.
    put(&mut b, AER, 0x0001 | 1 << 16 | (SRIOV as u32) << 20, 4);
    put(&mut b, SRIOV, 0x0010 | 1 << 16 | (PASID as u32) << 20, 4);
    put(&mut b, PASID, 0x001b | 1 << 16 | (ACS as u32) << 20, 4);
    put(&mut b, ACS, 0x000d | 1 << 16, 4);
    Ok(b)
}

fn cfg(f: &Function) -> Result<VirtConfig> {
    VirtConfig::new(f, &hw()?)
}

/// The hardware bits a write would change (`None`: none).
fn hw_of(p: &WritePlan) -> Option<HwWrite> {
    p.hw
}

/// The capability IDs userspace finds walking the standard chain of `c` (hardware `h`).
fn std_chain(c: &VirtConfig, h: &[u8]) -> Result<KVec<u8>> {
    let mut ids = KVec::new();
    let mut pos = c.read(0x34, 1, u32::from(h[0x34]))? as u16;
    while pos != 0 {
        let p = usize::from(pos);
        ids.push(c.read(pos, 1, u32::from(h[p]))? as u8, GFP_KERNEL)?;
        pos = c.read(pos + 1, 1, u32::from(h[p + 1]))? as u16;
    }
    Ok(ids)
}

/// The capability a row of docs/config-space.md names, at its offset in the synthetic function.
fn doc_base(cap: &str) -> Option<usize> {
    Some(match cap {
        "header" => 0,
        "PM" => PM,
        "vendor-specific" => VNDR,
        "MSI" => MSI,
        "slot ID" => SLOTID,
        "MSI-X" => MSIX,
        "PCIe" => EXP,
        "AF" => AF,
        "VPD" => VPD,
        "AER" => AER,
        "SR-IOV" => SRIOV,
        "PASID" => PASID,
        "ACS" => ACS,
        "gap" => GAP,
        _ => return None,
    })
}

fn hex(s: &str) -> Option<u32> {
    u32::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

/// The documented table.
const DOC: &str = include_str!("../docs/config-space.md");

fn dw(h: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([h[off], h[off + 1], h[off + 2], h[off + 3]])
}

#[kunit_tests(mdev_pci_wrap_config)]
mod tests {
    use super::*;

    /// VFs read 0xffff as IDs in hardware; the virtual IDs win at every width; writes drop.
    #[test]
    fn ids_are_virtual() -> Result {
        let mut c = cfg(&vf())?;
        assert_eq!(c.read(0, 4, 0xffff_ffff)?, 0x10ca_8086);
        assert_eq!(c.read(2, 2, 0xffff)?, 0x10ca);
        assert_eq!(c.read(1, 1, 0xff)?, 0x80);
        assert_eq!(c.write(0, 4, 0x1234_5678)?, WritePlan::default());
        assert_eq!(c.read(0, 4, 0)?, 0x10ca_8086);
        Ok(())
    }

    /// docs/config-space.md's table is what the code does: every row's virtual and writable
    /// masks are those the code builds for the synthetic VF.
    #[test]
    fn doc_table_matches_the_code() -> Result {
        let c = cfg(&vf())?;
        let mut rows = 0;
        for line in DOC.lines() {
            let cols: KVec<&str> = {
                let mut v = KVec::new();
                for col in line.split('|') {
                    v.push(col.trim(), GFP_KERNEL)?;
                }
                v
            };
            // "", capability, register, offset, size, virtual, writable, effect, "".
            if cols.len() != 9 || !cols[3].starts_with("0x") {
                continue;
            }
            let base = doc_base(cols[1]);
            let (off, size, virt, write) = (
                hex(cols[3]),
                cols[4].parse::<usize>().ok(),
                hex(cols[5]),
                hex(cols[6]),
            );
            let (Some(base), Some(off), Some(size), Some(virt), Some(write)) =
                (base, off, size, virt, write)
            else {
                pr_err!("docs/config-space.md: cannot read the row {}\n", line);
                return Err(EINVAL);
            };
            // Rows wider than 4 bytes have the same masks in every byte (or 0).
            for i in 0..size {
                let at = base + off as usize + i;
                let (v, w) = c.perm(at as u16).ok_or(EINVAL)?;
                let shift = 8 * (i % 4);
                let (dv, dw) = if size > 4 {
                    (virt as u8, write as u8)
                } else {
                    ((virt >> shift) as u8, (write >> shift) as u8)
                };
                if (v, w) != (dv, dw) {
                    pr_err!(
                        "docs/config-space.md row '{} {}': byte {:#x} is virtual {:#04x} writable {:#04x} in the code, {:#04x} {:#04x} in the doc\n",
                        cols[1], cols[2], at, v, w, dv, dw
                    );
                }
                assert_eq!((v, w), (dv, dw));
            }
            rows += 1;
        }
        assert!(rows >= 60);
        Ok(())
    }

    /// Misaligned, oversized and out-of-range accesses are refused.
    #[test]
    fn bad_accesses_are_refused() -> Result {
        let mut c = cfg(&vf())?;
        assert!(c.read(1, 2, 0).is_err());
        assert!(c.read(2, 4, 0).is_err());
        assert!(c.read(0, 3, 0).is_err());
        assert!(c.read(4096, 1, 0).is_err());
        assert!(c.write(4094, 4, 0).is_err());
        Ok(())
    }

    /// Capabilities vfio-pci hides (slot ID, PASID) are cut out of both chains; the others
    /// stay, in order, and the capability bit of STATUS is set.
    #[test]
    fn hidden_capabilities_are_cut_out() -> Result {
        let h = hw()?;
        let c = VirtConfig::new(&vf(), &h)?;
        let ids = std_chain(&c, &h)?;
        assert_eq!(&ids[..], &[0x01, 0x09, 0x05, 0x11, 0x10, 0x13, 0x03]);
        // AER's next pointer now skips PASID: AER -> SR-IOV -> ACS.
        let next = |off: usize| -> Result<u32> { Ok(c.read(off as u16, 4, dw(&h, off))? >> 20) };
        assert_eq!(next(AER)?, SRIOV as u32);
        assert_eq!(next(SRIOV)?, ACS as u32);
        assert_eq!(next(ACS)?, 0);
        assert_eq!(c.read(0x06, 2, 0x0010)? & 0x10, 0x10);
        assert!(c.find(CapKind::Ext(0x1b)).is_none());
        assert!(c.find(CapKind::Ext(0x10)).is_some());
        Ok(())
    }

    /// A hidden capability first in the extended chain anchors it with ID 0, next kept.
    #[test]
    fn hidden_first_extended_capability_anchors_the_chain() -> Result {
        let mut h = hw()?;
        put(&mut h, AER, 0x001b | 1 << 16 | (SRIOV as u32) << 20, 4); // PASID first
        let c = VirtConfig::new(&vf(), &h)?;
        assert_eq!(c.read(AER as u16, 4, dw(&h, AER))?, (SRIOV as u32) << 20);
        Ok(())
    }

    /// Unknown capabilities are read-only: SR-IOV (VF Enable, NumVFs, VF BARs), ACS control,
    /// the hidden PASID's control and a hidden capability's header never reach hardware.
    #[test]
    fn unknown_and_hidden_capabilities_are_read_only() -> Result {
        let mut c = cfg(&vf())?;
        for (off, len) in [
            (SRIOV + 8, 2),
            (SRIOV + 0x10, 2),
            (SRIOV + 0x24, 4),
            (ACS + 6, 2),
            (PASID + 6, 2),
            (SLOTID, 2),
            (PASID, 4),
        ] {
            assert_eq!(c.write(off as u16, len, 0xffff_ffff)?, WritePlan::default());
        }
        // They read from the hardware (the next pointers aside).
        assert_eq!(c.read((SRIOV + 8) as u16, 2, 0x1234)?, 0x1234);
        Ok(())
    }

    /// Bytes outside every capability go to the hardware raw, as vfio-pci's gaps.
    #[test]
    fn gaps_are_raw() -> Result {
        let mut c = cfg(&vf())?;
        let p = c.write(GAP as u16, 4, 0xdead_beef)?;
        assert_eq!(
            hw_of(&p),
            Some(HwWrite {
                mask: !0,
                val: 0xdead_beef
            })
        );
        assert_eq!(c.read(GAP as u16, 4, 0x1234_5678)?, 0x1234_5678);
        Ok(())
    }

    /// COMMAND of a VF: memory enable virtual (reads 1 from the start), INTx disable
    /// virtual, bus master to the hardware; memory stays "enabled" for the VF (its memory
    /// space is the PF's to enable).
    #[test]
    fn vf_command_register() -> Result {
        let mut c = cfg(&vf())?;
        assert_eq!(c.read(0x04, 2, 0)?, 0x0002);
        let p = c.write(0x04, 2, 0x0404)?; // bus master, INTx disable, memory off
        assert_eq!(p.actions().count(), 0);
        let hw = hw_of(&p).ok_or(EINVAL)?;
        assert_eq!(hw.mask & 0x0406, 0x0004);
        assert_eq!(c.read(0x04, 2, 0x0004)?, 0x0404);
        assert!(c.memory_enabled());
        Ok(())
    }

    /// COMMAND of a function that decodes by it: memory enable goes to the hardware and its
    /// clearing is reported, so that BAR mappings are revoked first.
    #[test]
    fn pf_memory_enable_is_reported() -> Result {
        let mut c = cfg(&pf())?;
        c.sync_command(0x0002);
        assert!(c.memory_enabled());
        let p = c.write(0x04, 2, 0x0000)?;
        assert_eq!(hw_of(&p).map(|h| h.mask & 0x2), Some(0x2));
        assert_eq!(p.actions[0], Some(Action::MemoryEnable(false)));
        assert!(!c.memory_enabled());
        let p = c.write(0x04, 1, 0x02)?;
        assert_eq!(p.actions[0], Some(Action::MemoryEnable(true)));
        assert!(c.memory_enabled());
        Ok(())
    }

    /// STATUS is read-only; the interrupt pin of a VF reads 0 whatever the hardware says.
    #[test]
    fn status_and_pin() -> Result {
        let mut c = cfg(&vf())?;
        assert_eq!(c.write(0x06, 2, 0xffff)?, WritePlan::default());
        assert_eq!(c.read(0x3d, 1, 0x01)?, 0);
        Ok(())
    }

    /// PMCSR: the power state goes through the kernel, never raw; PME is hidden.
    #[test]
    fn power_state_goes_through_the_kernel() -> Result {
        let mut c = cfg(&vf())?;
        let p = c.write((PM + 4) as u16, 2, 0x0103)?; // D3hot, PME enable
        assert_eq!(p.actions[0], Some(Action::PowerState(3)));
        assert_eq!(hw_of(&p).map(|h| h.mask & 0x8103), Some(0));
        // PME support and enable read 0.
        assert_eq!(c.read((PM + 2) as u16, 2, 0xf803)?, 0x0003);
        assert_eq!(c.read((PM + 4) as u16, 2, 0x0008)? & 0x0100, 0);
        Ok(())
    }

    /// DEVCTL: initiate-FLR is virtual and asks for a reset (the function has PCIe FLR),
    /// reading back 0; MPS stays virtual; a new MRRS is asked of the kernel; the error
    /// reporting enables go to the hardware; phantom functions and ARI do not.
    #[test]
    fn pcie_device_control() -> Result {
        let mut c = cfg(&vf())?;
        let dc = (EXP + 8) as u16;
        let p = c.write(dc, 2, 0xa020)?; // FLR, same MRRS and MPS
        assert_eq!(p.actions[0], Some(Action::Reset));
        assert_eq!(p.actions[1], None);
        assert_eq!(c.read(dc, 2, 0x2020)? & 0x8000, 0);
        let p = c.write(dc, 2, 0x5041)?; // MRRS 4096 (5), MPS 512 (2), CERE
        assert_eq!(p.actions[0], Some(Action::ReadRq(4096)));
        let hw = hw_of(&p).ok_or(EINVAL)?;
        assert_eq!(hw.mask & 0x0001, 0x0001);
        assert_eq!(hw.mask & 0x70e0, 0);
        assert_eq!(hw.mask & 0x0200, 0); // phantom
        assert_eq!(c.read(dc, 2, 0x2020)? & 0x70e0, 0x5040);
        // DEVCTL2: ARI forwarding is the kernel's.
        let p = c.write((EXP + 0x28) as u16, 2, 0xffff)?;
        assert_eq!(hw_of(&p).map(|h| h.mask & 0x20), Some(0));
        // Link control is read-only.
        assert_eq!(
            c.write((EXP + 0x10) as u16, 2, 0x0003)?,
            WritePlan::default()
        );
        Ok(())
    }

    /// Without FLR in DEVCAP, initiate-FLR still reads 0 but asks for nothing.
    #[test]
    fn no_flr_without_the_capability() -> Result {
        let mut h = hw()?;
        put(&mut h, EXP + 4, 0, 4);
        let mut c = VirtConfig::new(&vf(), &h)?;
        let p = c.write((EXP + 8) as u16, 2, 0xa020)?;
        assert_eq!(p.actions().count(), 0);
        Ok(())
    }

    /// Advanced Features: the FLR bit is virtual and asks for a reset.
    #[test]
    fn af_flr() -> Result {
        let mut c = cfg(&vf())?;
        let p = c.write((AF + 4) as u16, 1, 0x01)?;
        assert_eq!(p.actions[0], Some(Action::Reset));
        assert_eq!(c.read((AF + 4) as u16, 1, 0)?, 0);
        Ok(())
    }

    /// AER: only the bits vfio-pci lets through reach the hardware.
    #[test]
    fn aer_masks() -> Result {
        let mut c = cfg(&vf())?;
        let p = c.write((AER + 8) as u16, 4, !0)?; // uncorrectable mask
        assert_eq!(hw_of(&p).map(|h| h.mask), Some(0x03ff_f031));
        let p = c.write((AER + 0x14) as u16, 4, !0)?; // correctable mask
        assert_eq!(hw_of(&p).map(|h| h.mask), Some(0x0000_f1c1));
        let p = c.write((AER + 0x18) as u16, 4, !0)?; // capabilities and control
        assert_eq!(hw_of(&p).map(|h| h.mask), Some(0x140));
        // The header (and its next pointer) is virtual.
        assert_eq!(c.write(AER as u16, 4, 0)?, WritePlan::default());
        Ok(())
    }

    /// A vendor-specific capability is writable after its header, as vfio-pci.
    #[test]
    fn vendor_capability() -> Result {
        let mut c = cfg(&vf())?;
        assert_eq!(
            c.write(VNDR as u16, 4, !0)?.hw.map(|h| h.mask),
            Some(0xff00_0000)
        );
        assert_eq!(
            c.write((VNDR + 4) as u16, 4, 7)?.hw.map(|h| h.mask),
            Some(!0)
        );
        Ok(())
    }

    /// VPD: address and data are virtual; setting the address asks the kernel for the access;
    /// its completion fills the data and flips the flag.
    #[test]
    fn vpd_is_proxied() -> Result {
        let mut c = cfg(&vf())?;
        let p = c.write((VPD + 2) as u16, 2, 0x0010)?;
        assert_eq!(
            p.actions[0],
            Some(Action::Vpd {
                cap: VPD as u16,
                addr: 0x10,
                data: None
            })
        );
        assert_eq!(p.hw, None);
        c.vpd_done(VPD as u16, Some(0x1234_5678), true);
        assert_eq!(c.read((VPD + 4) as u16, 4, 0)?, 0x1234_5678);
        assert_eq!(c.read((VPD + 2) as u16, 2, 0)?, 0x8010);
        c.write((VPD + 4) as u16, 4, 0xcafe)?;
        let p = c.write((VPD + 2) as u16, 2, 0x8020)?;
        assert_eq!(
            p.actions[0],
            Some(Action::Vpd {
                cap: VPD as u16,
                addr: 0x20,
                data: Some(0xcafe)
            })
        );
        Ok(())
    }

    /// MSI: enable, multiple message enable (capped at what the function can do), address,
    /// data and mask bits are userspace's own; pending bits read from the hardware; nothing
    /// is written to it.
    #[test]
    fn msi_is_virtual() -> Result {
        let mut c = cfg(&vf())?;
        let m = MSI as u16;
        // The host enabled MSI with 2 vectors.
        assert_eq!(c.read(m + 2, 2, 0x0195)?, 0x0184);
        let p = c.write(m + 2, 2, 0x0071)?;
        assert_eq!(p.hw, None);
        assert_eq!(c.read(m + 2, 2, 0x0184)?, 0x01a5);
        for (off, val) in [(4, 0xfee0_1000u32), (8, 0x1), (0xc, 0x4041), (0x10, 0x2)] {
            assert_eq!(c.write(m + off, 4, val)?.hw, None);
            assert_eq!(
                c.read(m + off, 4, 0xdead_beef)? & if off == 0xc { 0xffff } else { !0 },
                val
            );
        }
        assert_eq!(c.write(m + 0x14, 4, !0)?, WritePlan::default());
        assert_eq!(c.read(m + 0x14, 4, 0x1)?, 0x1);
        Ok(())
    }

    /// MSI-X: enable and function mask are userspace's; the host's enable does not show.
    #[test]
    fn msix_enable_and_mask_are_virtual() -> Result {
        let mut c = cfg(&vf())?;
        let m = MSIX as u16;
        assert_eq!(c.read(m + 2, 2, 0x8002)?, 0x0002);
        assert_eq!(c.write(m + 2, 2, 0xc7ff)?.hw, None);
        assert_eq!(c.read(m + 2, 2, 0x8002)?, 0xc002);
        assert_eq!(c.write(m + 4, 4, 0)?, WritePlan::default());
        Ok(())
    }

    /// The BAR sizing protocol on 32-bit memory BARs; absent BARs and the ROM read 0.
    #[test]
    fn bar_sizing() -> Result {
        let mut c = cfg(&vf())?;
        assert_eq!(c.read(0x10, 4, 0)?, 0);
        c.write(0x10, 4, 0xffff_ffff)?;
        assert_eq!(c.read(0x10, 4, 0)?, 0xffff_c000);
        c.write(0x12, 2, 0xfebf)?;
        c.write(0x11, 1, 0xff)?;
        assert_eq!(c.read(0x10, 4, 0)?, 0xfebf_c000);
        c.write(0x14, 4, 0xffff_ffff)?;
        assert_eq!(c.read(0x14, 4, 0)?, 0);
        c.write(0x30, 4, 0xffff_ffff)?;
        assert_eq!(c.read(0x30, 4, 0xffff_ffff)?, 0);
        Ok(())
    }

    /// A prefetchable 64-bit BAR spans two registers; I/O BARs keep bit 0; sizes round up.
    #[test]
    fn bar_kinds() -> Result {
        let mut f = vf();
        f.bars[0] = Bar {
            kind: BarKind::Mem64 { prefetch: true },
            size: 0x2_0000_0000,
        };
        f.bars[2] = Bar {
            kind: BarKind::Io,
            size: 0x14,
        };
        let mut c = cfg(&f)?;
        assert_eq!(c.read(0x10, 4, 0)?, 0xc);
        c.write(0x10, 4, !0)?;
        c.write(0x14, 4, !0)?;
        assert_eq!(c.read(0x14, 4, 0)?, 0xffff_fffe);
        c.write(0x18, 4, !0)?;
        assert_eq!(c.read(0x18, 4, 0)?, 0xffff_ffe1);
        Ok(())
    }

    /// Every open starts from the virtual config space as it was created.
    #[test]
    fn reset_forgets_the_last_user() -> Result {
        let mut c = cfg(&vf())?;
        c.write(0x10, 4, 0xfebf_0000)?;
        c.write(0x04, 2, 0)?;
        c.reset();
        assert_eq!(c.read(0x10, 4, 0)?, 0);
        assert_eq!(c.read(0x04, 2, 0)?, 0x0002);
        Ok(())
    }

    /// A function without capabilities shows none (no stray capability bit or pointer).
    #[test]
    fn no_capabilities() -> Result {
        let mut h = KVec::from_elem(0u8, 256, GFP_KERNEL)?;
        put(&mut h, 0x06, 0x0010, 2);
        put(&mut h, 0x34, 0x40, 1);
        put(&mut h, 0x40, 0x0004, 2); // only a hidden slot-ID capability
        let c = VirtConfig::new(&vf(), &h)?;
        assert_eq!(c.read(0x34, 1, 0x40)?, 0);
        assert_eq!(c.read(0x06, 2, 0x0010)? & 0x10, 0);
        Ok(())
    }

    // --- A vendor's edits -------------------------------------------------------------

    /// Virtual fields a vendor sets read its values at every width, keep them across a
    /// reset, take userspace writes only in their writable bits and never reach hardware;
    /// BAR registers cannot be edited.
    #[test]
    fn vendor_virtual_fields() -> Result {
        let mut c = cfg(&vf())?;
        c.set_virtual(0x00, 4, 0x7e57_1b36, 0)?;
        c.set_virtual(0x2c, 4, 0x0001_7e57, 0)?;
        c.set_virtual(0x08, 1, 0x7e, 0x0f)?;
        assert_eq!(c.read(0x00, 4, 0xffff_ffff)?, 0x7e57_1b36);
        assert_eq!(c.read(0x02, 2, 0xffff)?, 0x7e57);
        assert_eq!(c.read(0x2e, 2, 0x1234)?, 0x0001);
        assert_eq!(c.hw_mask(0x2c, 4), 0);
        // The revision's low nibble is writable, in the virtual copy only.
        assert_eq!(c.write(0x08, 1, 0xff)?, WritePlan::default());
        assert_eq!(c.read(0x08, 1, 0)?, 0x7f);
        c.reset();
        assert_eq!(c.read(0x08, 1, 0)?, 0x7e);
        assert_eq!(c.write(0x2c, 4, 0)?, WritePlan::default());
        assert_eq!(c.read(0x2c, 4, 0)?, 0x0001_7e57);
        assert_eq!(c.set_virtual(0x10, 4, 0, 0), Err(EINVAL));
        assert_eq!(c.set_virtual(0x31, 1, 0, 0), Err(EINVAL));
        assert_eq!(c.set_virtual(0x2d, 2, 0, 0), Err(EINVAL));
        assert_eq!(c.set_virtual(0xffe, 4, 0, 0), Err(EINVAL));
        Ok(())
    }

    /// A hidden capability leaves the chain (first, middle, and the first extended one,
    /// which then anchors the chain), its bytes read-only; MSI and MSI-X cannot be hidden;
    /// hiding every standard capability clears the capability-list bit.
    #[test]
    fn vendor_hides_capabilities() -> Result {
        let h = hw()?;
        let mut c = VirtConfig::new(&vf(), &h)?;
        c.hide(CapKind::Std(0x01))?; // PM, the first
        c.hide(CapKind::Std(0x10))?; // PCIe, in the middle
        assert_eq!(&std_chain(&c, &h)?[..], &[0x09, 0x05, 0x11, 0x13, 0x03]);
        assert!(c.find(CapKind::Std(0x01)).is_none());
        assert_eq!(c.write((PM + 4) as u16, 2, 3)?, WritePlan::default());
        assert_eq!(c.write((EXP + 8) as u16, 2, 0x8000)?, WritePlan::default());
        assert_eq!(c.hide(CapKind::Std(0x01)), Err(ENOENT));
        assert_eq!(c.hide(CapKind::Std(0x05)), Err(EINVAL));
        assert_eq!(c.hide(CapKind::Std(0x11)), Err(EINVAL));
        c.hide(CapKind::Ext(0x01))?; // AER, first of the extended chain
        assert_eq!(c.read(AER as u16, 4, dw(&h, AER))?, (SRIOV as u32) << 20);
        c.hide(CapKind::Ext(0x10))?; // SR-IOV: the anchor now points at ACS
        assert_eq!(c.read(AER as u16, 4, dw(&h, AER))? >> 20, ACS as u32);
        // Kept across a reset (at every open).
        c.reset();
        assert_eq!(&std_chain(&c, &h)?[..], &[0x09, 0x05, 0x11, 0x13, 0x03]);
        for id in [0x09, 0x13, 0x03] {
            c.hide(CapKind::Std(id))?;
        }
        assert_eq!(&std_chain(&c, &h)?[..], &[0x05, 0x11]);
        assert_eq!(c.read(0x06, 2, 0x0010)? & 0x10, 0x10);
        Ok(())
    }

    /// An added capability lands in the first gap that holds it, at the end of its chain,
    /// reads its bytes with ID and next filled in, takes writes in its writable bits only
    /// (virtual, no side effect); no gap: ENOSPC.
    #[test]
    fn vendor_adds_capabilities() -> Result {
        let h = hw()?;
        let mut c = VirtConfig::new(&vf(), &h)?;
        let data = [0xaa, 0xbb, 12, 0, 0x5a, 0, 0, 0, 1, 2, 3, 4];
        let pos = c.add_cap(CapKind::Std(0x09), &data, &[0, 0, 0, 0, 0xf0])?;
        // The first dword-aligned 12 free bytes: right after VPD (8 bytes at 0xc0).
        assert_eq!(usize::from(pos), VPD + 8);
        assert_eq!(
            &std_chain(&c, &h)?[..],
            &[0x01, 0x09, 0x05, 0x11, 0x10, 0x13, 0x03, 0x09]
        );
        assert_eq!(c.read(pos, 4, 0)?, 0x000c_0009);
        assert_eq!(c.read(pos + 8, 4, 0)?, 0x0403_0201);
        assert_eq!(c.hw_mask(pos, 4), 0);
        assert_eq!(c.write(pos + 4, 1, 0xff)?, WritePlan::default());
        assert_eq!(c.read(pos + 4, 1, 0)?, 0xfa);
        assert_eq!(c.write(pos + 8, 4, 0)?, WritePlan::default());
        assert_eq!(c.read(pos + 8, 4, 0)?, 0x0403_0201);
        // An extended one, after ACS.
        let e = c.add_cap(CapKind::Ext(0x0b), &[0, 0, 1, 0, 9, 9, 9, 9], &[])?;
        assert!(usize::from(e) >= 0x100 && usize::from(e) % 4 == 0);
        assert_eq!(c.read(ACS as u16, 4, dw(&h, ACS))? >> 20, u32::from(e));
        assert_eq!(c.read(e, 4, 0)?, 0x0001_000b);
        // Too big for any standard gap.
        assert_eq!(c.add_cap(CapKind::Std(0x09), &[0; 100], &[]), Err(ENOSPC));
        assert_eq!(c.add_cap(CapKind::Std(0x09), &[0; 1], &[]), Err(EINVAL));
        // A function without capabilities gets its first: CAP_PTR and the status bit set.
        let mut h2 = KVec::from_elem(0u8, 256, GFP_KERNEL)?;
        put(&mut h2, 0x00, 0xffff_ffff, 4);
        let mut c2 = VirtConfig::new(&vf(), &h2)?;
        let p2 = c2.add_cap(CapKind::Std(0x09), &data, &[])?;
        assert_eq!(c2.read(0x34, 1, 0)?, u32::from(p2));
        assert_eq!(c2.read(0x06, 2, 0)? & 0x10, 0x10);
        assert_eq!(&std_chain(&c2, &h2)?[..], &[0x09]);
        Ok(())
    }

    /// A vendor's INTx pin: the pin reads INTA (kept across a reset), STATUS's interrupt bit
    /// is virtual and follows the line, INTx-disable is the user's virtual COMMAND bit.
    #[test]
    fn vendor_intx_pin() -> Result {
        let mut c = cfg(&vf())?;
        assert_eq!(c.read(0x3d, 1, 1)?, 0);
        c.present_intx();
        assert_eq!(c.read(0x3d, 1, 0)?, 1);
        assert_eq!(c.read(0x06, 2, 0x0018)? & 0x08, 0);
        c.set_intx_status(true);
        assert_eq!(c.read(0x06, 2, 0x0010)? & 0x08, 0x08);
        assert!(!c.intx_disabled());
        assert_eq!(
            c.write(0x04, 2, 0x0400)?.hw.map(|h| h.mask & 0x400),
            Some(0)
        );
        assert!(c.intx_disabled());
        c.reset();
        assert!(!c.intx_disabled());
        assert_eq!(c.read(0x06, 2, 0)? & 0x08, 0);
        assert_eq!(c.read(0x3d, 1, 0)?, 1);
        Ok(())
    }
}
