// SPDX-License-Identifier: GPL-2.0

//! Config-space capabilities: the chains of the hardware (the function's sysfs `config`, as
//! the kernel reads it) and of the user's view (region 7), and what vfio-pci makes of each
//! capability (drivers/vfio/pci/vfio_pci_config.c, `pci_cap_length`, `pci_ext_cap_length`,
//! `cap_perms`, `ecap_perms`):
//!   - hidden: length 0 in those tables, or an ID past the table (PASID, DPC, L1SS, PTM,
//!     slot ID, ...): cut out of the chain the user walks;
//!   - read-only: every capability that has a length but no permission table or write
//!     function of its own (SR-IOV, ACS, ATS, PRI, ARI, DSN, LTR, ReBAR, TPH, VC, ...);
//!   - anything else (PM, VPD, MSI, MSI-X, PCI-X, PCIe, AF, AER, power budgeting, vendor
//!     specific) has its own rules and is not probed as read-only here.

use crate::vfio::{Device, HwConfig, Result, VFIO_PCI_CONFIG_REGION_INDEX};

/// A capability: ID and offset.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub id: u16,
    pub off: u64,
}

/// A source of config-space bytes: the hardware, or the user's view.
pub trait ConfigRead {
    fn cfg(&self, off: u64, len: usize) -> Result<u64>;
    fn cfg_size(&self) -> Result<u64>;
}

impl ConfigRead for HwConfig {
    fn cfg(&self, off: u64, len: usize) -> Result<u64> {
        self.read(off, len)
    }
    fn cfg_size(&self) -> Result<u64> {
        self.size()
    }
}

impl ConfigRead for Device {
    fn cfg(&self, off: u64, len: usize) -> Result<u64> {
        self.read_reg(VFIO_PCI_CONFIG_REGION_INDEX, off, len)
    }
    fn cfg_size(&self) -> Result<u64> {
        Ok(self.region_info(VFIO_PCI_CONFIG_REGION_INDEX)?.size)
    }
}

/// The standard capability chain (bounded: at most 48 fit in the header's 192 bytes).
pub fn std_caps(c: &dyn ConfigRead) -> Result<Vec<Cap>> {
    let mut caps = Vec::new();
    if c.cfg(0x06, 2)? & 0x10 == 0 {
        return Ok(caps); // no capability list (STATUS.CAP_LIST)
    }
    let mut ptr = c.cfg(0x34, 1)? & 0xfc;
    while ptr >= 0x40 && caps.len() < 48 {
        caps.push(Cap { id: c.cfg(ptr, 1)? as u16, off: ptr });
        ptr = c.cfg(ptr + 1, 1)? & 0xfc;
    }
    Ok(caps)
}

/// The extended capability chain from 0x100 (bounded), without the all-zero header of an
/// absent chain. An entry with ID 0 is kept: vfio-pci leaves one as a placeholder when it
/// hides the first capability (`ext_placeholders` drops it).
pub fn ext_caps(c: &dyn ConfigRead) -> Result<Vec<Cap>> {
    let mut caps = Vec::new();
    if c.cfg_size()? <= 0x100 {
        return Ok(caps);
    }
    let mut ptr = 0x100;
    while ptr >= 0x100 && caps.len() < (0x1000 - 0x100) / 8 {
        let h = c.cfg(ptr, 4)?;
        if h == 0 || h == 0xffff_ffff {
            break;
        }
        caps.push(Cap { id: (h & 0xffff) as u16, off: ptr });
        ptr = (h >> 20) & 0xffc;
    }
    Ok(caps)
}

/// Standard IDs with their own rules in vfio-pci (not read-only by default): PM, VPD, MSI,
/// PCI-X, vendor-specific (raw), PCIe, MSI-X, AF.
const STD_OWN_RULES: [u16; 8] = [0x01, 0x03, 0x05, 0x07, 0x09, 0x10, 0x11, 0x13];
/// Extended IDs with their own rules: AER, power budgeting, vendor-specific and DVSEC (raw).
const EXT_OWN_RULES: [u16; 4] = [0x01, 0x04, 0x0b, 0x23];

/// vfio-pci's `pci_cap_length` (0: hidden; 0xff: variable), for IDs up to PCI_CAP_ID_MAX.
fn std_len(id: u16) -> Option<u64> {
    Some(match id {
        0x00 => 0x40,                                                      // the header
        0x01 => 8,                                                         // PM
        0x02 => 12,                                                        // AGP
        0x03 => 8,                                                         // VPD
        0x04 | 0x06 | 0x0a | 0x0b | 0x0c | 0x0d | 0x0e | 0x0f => 0,        // hidden
        0x05 | 0x07 | 0x08 | 0x09 | 0x10 | 0x12 => 0xff,                   // variable
        0x11 => 12,                                                        // MSI-X
        0x13 => 6,                                                         // AF
        _ => return None,                                                  // past the table
    })
}

/// vfio-pci's `pci_ext_cap_length` (0: hidden; 0xff: variable), for IDs up to
/// PCI_EXT_CAP_ID_MAX; an ID the table does not list is hidden.
fn ext_len(id: u16) -> u64 {
    match id {
        0x01 => 0x2c,                            // AER (up to the root command)
        0x02 | 0x08 | 0x09 => 0xff,              // VC, MFVC, VC9
        0x03 => 12,                              // DSN
        0x04 => 16,                              // power budgeting
        0x0b | 0x0d | 0x15 | 0x16 | 0x17 | 0x23 => 0xff, // VNDR, ACS, ReBAR, DPA, TPH, DVSEC
        0x0e => 8,                               // ARI
        0x0f => 8,                               // ATS
        0x10 => 64,                              // SR-IOV
        0x12 => 40,                              // multicast (endpoint)
        0x13 => 16,                              // PRI
        0x18 => 8,                               // LTR
        _ => 0,                                  // RCLD, RCRB, MR-IOV, PASID, DPC, L1SS, PTM, ...
    }
}

pub fn std_hidden(id: u16) -> bool {
    std_len(id).is_none_or(|l| l == 0)
}

pub fn ext_hidden(id: u16) -> bool {
    ext_len(id) == 0
}

/// The bytes of a read-only capability that are certainly part of it (from its header on).
/// Variable-length ones are given their first 8 bytes (every one is at least that long),
/// ReBAR its control registers: vfio-pci treats bytes past a capability's end as raw.
fn ro_len(c: &dyn ConfigRead, cap: Cap, ext: bool) -> Result<u64> {
    if ext {
        Ok(match (cap.id, ext_len(cap.id)) {
            (0x15, _) => 4 + 8 * ((c.cfg(cap.off + 8, 4)? >> 5) & 7).max(1),
            (_, 0xff) => 8,
            (_, l) => l,
        })
    } else {
        Ok(match std_len(cap.id) {
            Some(0xff) => 8,
            Some(l) => l,
            None => 0,
        })
    }
}

/// The read-only capabilities of `caps` (by vfio-pci's rules) with their lengths.
pub fn ro_caps(c: &dyn ConfigRead, caps: &[Cap], ext: bool) -> Result<Vec<(Cap, u64)>> {
    let mut out = Vec::new();
    for &cap in caps {
        let (hidden, own) = if ext {
            (ext_hidden(cap.id), EXT_OWN_RULES.contains(&cap.id))
        } else {
            (std_hidden(cap.id), STD_OWN_RULES.contains(&cap.id))
        };
        if !hidden && !own {
            out.push((cap, ro_len(c, cap, ext)?));
        }
    }
    Ok(out)
}

/// `0x10@0x80` style, `0x000e@0x100` for extended capabilities; space-separated.
pub fn fmt_caps(caps: &[Cap], ext: bool) -> String {
    let list: Vec<String> = caps
        .iter()
        .map(|c| if ext { format!("{:#06x}@{:#x}", c.id, c.off) } else { format!("{:#04x}@{:#x}", c.id, c.off) })
        .collect();
    list.join(" ")
}

/// The chain without vfio-pci's ID-0 placeholder entries.
pub fn ext_placeholders(caps: &[Cap]) -> Vec<Cap> {
    caps.iter().copied().filter(|c| c.id != 0).collect()
}
