// SPDX-License-Identifier: GPL-2.0

//! The virtual config space of a wrapped VF (`mdev_pci_wrap::config`), without hardware.

use kernel::prelude::*;
use mdev_pci_wrap::config::{
    Bar,
    BarKind,
    VirtConfig, //
};

/// The BARs of an igbvf-like VF: BAR0 16 KiB and BAR3 16 KiB, 32-bit; the rest absent.
fn igbvf_bars() -> [Bar; 6] {
    let mem = Bar {
        kind: BarKind::Mem32 { prefetch: false },
        size: 0x4000,
    };
    [mem, Bar::ABSENT, Bar::ABSENT, mem, Bar::ABSENT, Bar::ABSENT]
}

#[kunit_tests(mdev_pci_wrap_config)]
mod tests {
    use super::*;

    /// VFs read 0xffff as IDs in hardware; the virtual IDs win at every access width.
    #[test]
    fn ids_are_virtual_at_every_width() {
        let c = VirtConfig::new(0x8086, 0x10ca, &igbvf_bars());
        assert_eq!(c.read(0, 4, 0xffff_ffff), 0x10ca_8086);
        assert_eq!(c.read(0, 2, 0xffff_ffff), 0x8086);
        assert_eq!(c.read(2, 2, 0xffff_ffff), 0x10ca);
        assert_eq!(c.read(1, 1, 0xffff_ffff), 0x80);
        assert_eq!(c.read(3, 1, 0xffff_ffff), 0x10);
    }

    /// ID registers are read-only: a write is absorbed and changes nothing.
    #[test]
    fn id_writes_are_dropped() {
        let mut c = VirtConfig::new(0x8086, 0x10ca, &igbvf_bars());
        assert!(c.write(0, 4, 0x1234_5678));
        assert_eq!(c.read(0, 4, 0), 0x10ca_8086);
    }

    /// Registers outside the emulated set pass through, both ways.
    #[test]
    fn other_registers_pass_through() {
        let mut c = VirtConfig::new(0x8086, 0x10ca, &igbvf_bars());
        assert_eq!(c.read(0x04, 2, 0x0010_0406), 0x0406);
        assert_eq!(c.read(0x06, 2, 0x0010_0406), 0x0010);
        assert!(!c.write(0x04, 2, 0x0006));
        assert_eq!(c.read(0x40, 4, 0xdead_beef), 0xdead_beef);
    }

    /// The BAR sizing protocol on a 32-bit memory BAR: all ones reads back the size mask.
    #[test]
    fn mem32_bar_sizing() {
        let mut c = VirtConfig::new(0x8086, 0x10ca, &igbvf_bars());
        assert_eq!(c.read(0x10, 4, 0), 0);
        assert!(c.write(0x10, 4, 0xffff_ffff));
        assert_eq!(c.read(0x10, 4, 0), 0xffff_c000);
        assert!(c.write(0x10, 4, 0xfebf_0000));
        assert_eq!(c.read(0x10, 4, 0), 0xfebf_0000);
        // BAR3 is independent; BAR1 is absent and ignores the write.
        assert!(c.write(0x14, 4, 0xffff_ffff));
        assert_eq!(c.read(0x14, 4, 0), 0);
        assert!(c.write(0x1c, 4, 0xffff_ffff));
        assert_eq!(c.read(0x1c, 4, 0), 0xffff_c000);
    }

    /// A prefetchable 64-bit BAR spans two registers; the upper one carries the high mask.
    #[test]
    fn mem64_bar_sizing() {
        let mut bars = [Bar::ABSENT; 6];
        bars[0] = Bar {
            kind: BarKind::Mem64 { prefetch: true },
            size: 0x2_0000_0000,
        };
        let mut c = VirtConfig::new(0x1b36, 0x0010, &bars);
        assert_eq!(c.read(0x10, 4, 0), 0xc);
        c.write(0x10, 4, 0xffff_ffff);
        c.write(0x14, 4, 0xffff_ffff);
        assert_eq!(c.read(0x10, 4, 0), 0x0000_000c);
        assert_eq!(c.read(0x14, 4, 0), 0xffff_fffe);
    }

    /// I/O BARs keep bit 0 set; sizes that are not powers of two are rounded up.
    #[test]
    fn io_bar_and_rounding() {
        let mut bars = [Bar::ABSENT; 6];
        bars[2] = Bar {
            kind: BarKind::Io,
            size: 0x14,
        };
        let mut c = VirtConfig::new(0x1af4, 0x1000, &bars);
        c.write(0x18, 4, 0xffff_ffff);
        assert_eq!(c.read(0x18, 4, 0), 0xffff_ffe1);
    }

    /// Byte and word writes compose into the BAR register.
    #[test]
    fn partial_bar_writes() {
        let mut c = VirtConfig::new(0x8086, 0x10ca, &igbvf_bars());
        c.write(0x12, 2, 0xfebf);
        c.write(0x11, 1, 0xff);
        assert_eq!(c.read(0x10, 4, 0), 0xfebf_c000);
        assert_eq!(c.read(0x12, 2, 0), 0xfebf);
    }

    /// A VF has no expansion ROM: the ROM BAR reads 0 and ignores writes.
    #[test]
    fn rom_bar_is_absent() {
        let mut c = VirtConfig::new(0x8086, 0x10ca, &igbvf_bars());
        assert!(c.write(0x30, 4, 0xffff_ffff));
        assert_eq!(c.read(0x30, 4, 0xffff_ffff), 0);
    }

    /// MSI-X: the host enables the function's MSI-X; userspace sees and keeps its own enable
    /// and function-mask bits, the rest of the capability reads from the hardware, and no
    /// write reaches it.
    #[test]
    fn msix_enable_and_mask_are_virtual() {
        let mut c = VirtConfig::new(0x1b36, 0x0010, &igbvf_bars()).with_msix(0x70);
        // ID 0x11, next 0, Message Control: enabled by the host, table size 3.
        let hw = 0x8002_0011;
        assert_eq!(c.read(0x70, 4, hw), 0x0002_0011);
        assert_eq!(c.read(0x72, 2, hw), 0x0002);
        assert!(c.write(0x72, 2, 0xc7ff));
        assert_eq!(c.read(0x70, 4, hw), 0xc002_0011);
        assert_eq!(c.read(0x73, 1, 0x0002_0011), 0xc0);
        assert!(c.write(0x73, 1, 0x80));
        assert_eq!(c.read(0x72, 2, hw), 0x8002);
        // Table and PBA locations: hardware values, read-only.
        assert!(c.write(0x74, 4, 0x1234_5678));
        assert_eq!(c.read(0x74, 4, 0x0000_3000), 0x0000_3000);
        assert!(c.write(0x78, 4, 0));
        // Past the capability: passed through.
        assert!(!c.write(0x7c, 4, 0));
    }

    /// MSI with 64-bit addresses and per-vector masking: enable, multiple message enable,
    /// address, data and mask are userspace's own; pending bits read from the hardware.
    #[test]
    fn msi_registers_are_virtual() {
        // Message Control: per-vector masking, 64-bit, 4 vectors capable (MMC 2).
        let mut c = VirtConfig::new(0x1234, 0x11e8, &igbvf_bars()).with_msi(0x50, 0x0184);
        // The host enabled MSI with 2 vectors.
        let hw_ctrl = 0x0195_7005;
        assert_eq!(c.read(0x50, 4, hw_ctrl), 0x0184_7005);
        // Enable with MME 3 (8 vectors): capped to what the function can do (4).
        assert!(c.write(0x52, 2, 0x0031));
        assert_eq!(c.read(0x52, 2, hw_ctrl), 0x01a5);
        for (off, val) in [
            (0x54, 0xfee0_1000),
            (0x58, 0x1),
            (0x5c, 0x4041),
            (0x60, 0x2),
        ] {
            assert!(c.write(off, 4, val));
            assert_eq!(c.read(off, 4, 0xdead_beef), val);
        }
        // Byte writes compose.
        assert!(c.write(0x5d, 1, 0x99));
        assert_eq!(c.read(0x5c, 4, 0), 0x9941);
        // Pending: the hardware's, read-only.
        assert!(c.write(0x64, 4, 0xffff_ffff));
        assert_eq!(c.read(0x64, 4, 0x1), 0x1);
        assert!(!c.write(0x68, 4, 0));
    }

    /// MSI with 32-bit addresses and no masking: data follows the address; nothing after.
    #[test]
    fn msi_32bit_layout() {
        let mut c = VirtConfig::new(0x1234, 0x11e8, &igbvf_bars()).with_msi(0x40, 0x0000);
        assert!(c.write(0x44, 4, 0xfee0_0000));
        assert!(c.write(0x48, 2, 0x4021));
        assert_eq!(c.read(0x48, 4, 0xffff_ffff), 0x4021);
        assert_eq!(c.read(0x44, 4, 0), 0xfee0_0000);
        // MME stays 0: the function is capable of one vector.
        assert!(c.write(0x42, 2, 0x0071));
        assert_eq!(c.read(0x42, 2, 0x0000), 0x0001);
        assert!(!c.write(0x4c, 4, 0));
    }
}
