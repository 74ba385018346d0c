// SPDX-License-Identifier: GPL-2.0

//! Which BAR pages may be mapped (`mdev_pci_wrap::bar`), without hardware.

use kernel::prelude::*;
use mdev_pci_wrap::bar::{
    access_width,
    mappable_areas,
    may_map,
    Area, //
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
}
