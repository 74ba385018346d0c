// SPDX-License-Identifier: GPL-2.0

//! Which BAR pages may be mapped (`mdev_pci_wrap::bar`), without hardware.

use kernel::prelude::*;
use mdev_pci_wrap::{
    bar::{
        access_width,
        mappable_areas,
        may_map,
        Area, //
    },
    config::{
        Bar,
        BarKind, //
    },
    vendor::{
        Trap,
        VirtualBar, //
    },
};

const PAGE: u64 = 4096;

fn area(offset: u64, size: u64) -> Area {
    Area { offset, size }
}

#[kunit_tests(mdev_pci_wrap_bar)]
mod tests {
    use super::*;

    /// A BAR without MSI-X structures is mappable whole.
    #[test]
    fn whole_bar_without_msix() -> Result {
        let a = mappable_areas(0x4000, &[], PAGE)?;
        assert_eq!(a.len(), 1);
        assert_eq!(a[0], area(0, 0x4000));
        Ok(())
    }

    /// The NVMe VF layout: table at 0x2000, PBA at 0x3000 in a 16 KiB BAR0.
    #[test]
    fn msix_at_the_end() -> Result {
        let a = mappable_areas(0x4000, &[area(0x2000, 16), area(0x3000, 8)], PAGE)?;
        assert_eq!(a.len(), 1);
        assert_eq!(a[0], area(0, 0x2000));
        Ok(())
    }

    /// The igbvf layout: table at 0, PBA at 0x2000 in a 16 KiB BAR3 (order does not matter).
    #[test]
    fn holes_in_any_order() -> Result {
        let a = mappable_areas(0x4000, &[area(0x2000, 8), area(0, 48)], PAGE)?;
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], area(0x1000, 0x1000));
        assert_eq!(a[1], area(0x3000, 0x1000));
        Ok(())
    }

    /// A table spanning a page boundary takes both pages; overlapping holes merge.
    #[test]
    fn unaligned_and_overlapping_holes() -> Result {
        let a = mappable_areas(0x8000, &[area(0x1ff0, 0x20), area(0x2000, 8)], PAGE)?;
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], area(0, 0x1000));
        assert_eq!(a[1], area(0x3000, 0x5000));
        Ok(())
    }

    /// A BAR smaller than a page cannot be mapped; empty holes are ignored.
    #[test]
    fn small_bar_and_empty_holes() -> Result {
        assert_eq!(mappable_areas(0x800, &[], PAGE)?.len(), 0);
        let a = mappable_areas(0x2000, &[area(0x1000, 0)], PAGE)?;
        assert_eq!(a.len(), 1);
        assert_eq!(a[0], area(0, 0x2000));
        Ok(())
    }

    /// A mapping must lie inside one area; overflow and empty ranges are refused.
    #[test]
    fn may_map_checks_bounds() {
        let areas = [area(0x1000, 0x1000), area(0x3000, 0x1000)];
        assert!(may_map(&areas, 0x1000, 0x1000));
        assert!(may_map(&areas, 0x3000, 0x1000));
        assert!(!may_map(&areas, 0, 0x1000));
        assert!(!may_map(&areas, 0x1000, 0x2000));
        assert!(!may_map(&areas, 0x2000, 0x1000));
        assert!(!may_map(&areas, 0x1000, 0));
        assert!(!may_map(&areas, u64::MAX - 0xfff, 0x1000));
    }

    /// Region transfers split into naturally aligned accesses of at most the region's width.
    #[test]
    fn access_widths() {
        // 8 bytes at an 8-aligned offset of a BAR: one 64-bit access.
        assert_eq!(access_width(0x10, 8, 8), 8);
        // Config space never goes past 4.
        assert_eq!(access_width(0x10, 8, 4), 4);
        // Misaligned starts shrink to the alignment.
        assert_eq!(access_width(0x12, 8, 8), 2);
        assert_eq!(access_width(0x13, 8, 8), 1);
        assert_eq!(access_width(0x14, 8, 8), 4);
        // Short tails shrink to what is left.
        assert_eq!(access_width(0x10, 3, 8), 2);
        assert_eq!(access_width(0x10, 1, 8), 1);
        assert_eq!(access_width(0x10, 0, 8), 1);
        // Odd maxima are rounded to a power of two, bounded to 8.
        assert_eq!(access_width(0, 16, 3), 4);
        assert_eq!(access_width(0, 16, 64), 8);
    }

    /// A vendor's traps: the pages holding them are left out of the mappable areas, and an
    /// access hits a trap when it overlaps it, on its BAR only.
    #[test]
    fn traps_leave_the_mapping() -> Result {
        let t = Trap::new(0, 0x1000, 16);
        let a = mappable_areas(0x4000, &[area(t.offset, t.size)], PAGE)?;
        assert_eq!(&a[..], &[area(0, 0x1000), area(0x2000, 0x2000)]);
        assert!(!may_map(&a, 0x1000, PAGE));
        assert!(t.hits(0, 0x1000, 4));
        assert!(t.hits(0, 0xffc, 8));
        assert!(t.hits(0, 0x100f, 1));
        assert!(!t.hits(0, 0x1010, 4));
        assert!(!t.hits(0, 0xff8, 8));
        assert!(!t.hits(1, 0x1000, 4));
        assert!(!Trap::new(0, u64::MAX - 1, 16).hits(0, 0, 8));
        Ok(())
    }

    /// Virtual BARs take free indexes only (not a BAR the function has, nor the upper half
    /// of its 64-bit BAR), with a power-of-two size at least the minimum of their kind.
    #[test]
    fn virtual_bars() -> Result {
        let mem64 = Bar {
            kind: BarKind::Mem64 { prefetch: false },
            size: 0x4000,
        };
        let fresh = || {
            [
                mem64,
                Bar::ABSENT,
                Bar::ABSENT,
                Bar::ABSENT,
                Bar::ABSENT,
                Bar::ABSENT,
            ]
        };
        let mut bars = fresh();
        let v = VirtualBar::apply(
            &[VirtualBar::io(2, 32), VirtualBar::mem32(3, 4096)],
            &mut bars,
        )?;
        assert_eq!(v, [false, false, true, true, false, false]);
        assert_eq!(
            bars[2],
            Bar {
                kind: BarKind::Io,
                size: 32
            }
        );
        assert_eq!(bars[3].kind, BarKind::Mem32 { prefetch: false });
        assert_eq!(bars[0], mem64);
        for bad in [
            VirtualBar::io(0, 32), // the function's
            VirtualBar::io(1, 32), // upper half of its 64-bit BAR0
            VirtualBar::io(6, 32), // no such BAR
            VirtualBar::io(200, 32),
            VirtualBar::io(2, 24),   // not a power of two
            VirtualBar::io(2, 2),    // too small
            VirtualBar::mem32(2, 8), // too small for memory
            VirtualBar::mem32(2, 1 << 32),
        ] {
            assert_eq!(VirtualBar::apply(&[bad], &mut fresh()), Err(EINVAL));
        }
        assert_eq!(
            VirtualBar::apply(
                &[VirtualBar::io(2, 32), VirtualBar::io(2, 32)],
                &mut fresh()
            ),
            Err(EINVAL)
        );
        Ok(())
    }
}
