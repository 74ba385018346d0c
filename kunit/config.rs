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
}
