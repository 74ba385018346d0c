// SPDX-License-Identifier: GPL-2.0

//! The dirty-page tracker behind DMA logging (`mdev_pci_wrap::dirty`), without hardware:
//! against a page-by-page model, and at its edges.

use kernel::prelude::*;
use mdev_pci_wrap::dirty::{
    Range,
    Tracker, //
};

const P: u64 = 4096;

/// What a report gives, as the pages it covers (bit `i`: page `i` of IOVA 0).
fn report_pages(t: &mut Tracker, iova: u64, len: u64) -> Result<u64> {
    let mut pages = 0u64;
    let mut bad = false;
    t.report(iova, len, |s, l| {
        if s < iova || s + l > iova + len || l == 0 {
            bad = true;
        }
        let mut a = s / P;
        while a * P < s + l {
            if a < 64 {
                pages |= 1 << a;
            }
            a += 1;
        }
    })?;
    if bad {
        return Err(EINVAL);
    }
    Ok(pages)
}

/// Pages `a..b`, as a mask.
fn pages(a: u64, b: u64) -> u64 {
    (a..b).fold(0, |m, i| m | 1 << i)
}

/// A small pseudo-random generator (xorshift64), for repeatable sequences.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[kunit_tests(mdev_pci_wrap_dirty)]
mod tests {
    use super::*;

    /// START's arguments are checked: page size, empty, wrapping and overlapping ranges.
    #[test]
    fn start_checks_its_arguments() -> Result {
        let r = [Range::new(0, 16 * P)];
        for ps in [0, 1, 2048, 3 * P, P + 1] {
            assert!(Tracker::new(&r, ps, 4).is_err());
        }
        assert!(Tracker::new(&[], P, 4).is_err());
        assert!(Tracker::new(&[Range::new(P, 0)], P, 4).is_err());
        assert!(Tracker::new(&[Range::new(u64::MAX - P, 2 * P)], P, 4).is_err());
        assert!(Tracker::new(&[Range::new(0, 4 * P), Range::new(3 * P, 4 * P)], P, 4).is_err());
        // Unsorted but disjoint is fine.
        let t = Tracker::new(&[Range::new(8 * P, P), Range::new(0, 4 * P)], 2 * P, 4)?;
        assert_eq!(t.page_size(), 2 * P);
        Ok(())
    }

    /// A write is reported once, in whole pages, and only inside the tracked ranges.
    #[test]
    fn written_once_in_whole_pages() -> Result {
        let mut t = Tracker::new(&[Range::new(0, 8 * P), Range::new(16 * P, 8 * P)], P, 4)?;
        t.wrote(P + 0x800, 0x100);
        t.wrote(6 * P + 1, 4 * P); // pages 6..10: only 6 and 7 are tracked
        t.wrote(40 * P, P); // not tracked at all
        t.wrote(15 * P, 2 * P); // 15 no, 16 yes
        assert_eq!(
            report_pages(&mut t, 0, 64 * P)?,
            pages(1, 2) | pages(6, 8) | pages(16, 17)
        );
        assert_eq!(report_pages(&mut t, 0, 64 * P)?, 0);
        Ok(())
    }

    /// Held ranges are in every report until released, and in the one after.
    #[test]
    fn held_until_released() -> Result {
        let mut t = Tracker::new(&[Range::new(0, 32 * P)], P, 4)?;
        t.hold(7, 2 * P, 2 * P);
        t.hold(9, 10 * P, P);
        for _ in 0..3 {
            assert_eq!(
                report_pages(&mut t, 0, 32 * P)?,
                pages(2, 4) | pages(10, 11)
            );
        }
        t.release(7);
        assert_eq!(t.held(), 1);
        assert_eq!(
            report_pages(&mut t, 0, 32 * P)?,
            pages(2, 4) | pages(10, 11)
        );
        assert_eq!(report_pages(&mut t, 0, 32 * P)?, pages(10, 11));
        // The same tag again: moved, the old range written once more.
        t.hold(9, 20 * P, P);
        assert_eq!(
            report_pages(&mut t, 0, 32 * P)?,
            pages(10, 11) | pages(20, 21)
        );
        assert_eq!(report_pages(&mut t, 0, 32 * P)?, pages(20, 21));
        t.release(12345); // not held: nothing
        assert_eq!(t.held(), 1);
        Ok(())
    }

    /// A report covers its window only, and forgets only what is inside it.
    #[test]
    fn windows() -> Result {
        let mut t = Tracker::new(&[Range::new(0, 64 * P)], P, 4)?;
        t.wrote(0, 16 * P);
        t.hold(1, 30 * P, 4 * P);
        assert_eq!(report_pages(&mut t, 4 * P, 4 * P)?, pages(4, 8));
        assert_eq!(report_pages(&mut t, 32 * P, 8 * P)?, pages(32, 34));
        assert_eq!(
            report_pages(&mut t, 0, 64 * P)?,
            pages(0, 4) | pages(8, 16) | pages(30, 34)
        );
        assert_eq!(report_pages(&mut t, 0, 64 * P)?, pages(30, 34));
        assert_eq!(t.report(0, 0, |_, _| {}), Err(EINVAL));
        assert_eq!(t.report(u64::MAX - P, 2 * P, |_, _| {}), Err(EINVAL));
        Ok(())
    }

    /// More held ranges than the session allows: that range is reported once, then every
    /// report fails (userspace then takes every page as dirty).
    #[test]
    fn too_many_held_fails_reports() -> Result {
        let mut t = Tracker::new(&[Range::new(0, 64 * P)], P, 2)?;
        t.hold(1, 0, P);
        t.hold(2, P, P);
        assert!(!t.failed());
        t.hold(3, 2 * P, P);
        assert!(t.failed());
        assert_eq!(t.report(0, 64 * P, |_, _| {}), Err(ENOMEM));
        Ok(())
    }

    /// Writes and holds of any size, up to the top of the IOVA space, are clipped to the
    /// tracked ranges without overflowing (a tracked range cannot reach the top: START
    /// refuses it, as the VFIO core does).
    #[test]
    fn any_size() -> Result {
        assert!(Tracker::new(&[Range::new(u64::MAX - P + 1, P)], P, 1).is_err());
        let mut t = Tracker::new(&[Range::new(0, 8 * P)], P, 1)?;
        t.wrote(u64::MAX - 10, 100);
        t.wrote(u64::MAX, u64::MAX);
        t.hold(1, u64::MAX - P, u64::MAX);
        assert_eq!(report_pages(&mut t, 0, 64 * P)?, 0);
        t.wrote(P, u64::MAX);
        t.hold(1, 7 * P + 5, u64::MAX);
        assert_eq!(report_pages(&mut t, 0, 64 * P)?, pages(1, 8));
        assert_eq!(report_pages(&mut t, 0, 64 * P)?, pages(7, 8));
        Ok(())
    }

    /// Random writes, holds, releases and reports on 64 pages, 2,000 operations, against a
    /// page-by-page model: every report is exactly the model's (written since its last
    /// report, or held, inside the window and the tracked ranges).
    #[test]
    fn against_a_model() -> Result {
        let tracked = [Range::new(0, 24 * P), Range::new(32 * P, 24 * P)];
        let tracked_mask = pages(0, 24) | pages(32, 56);
        let mut t = Tracker::new(&tracked, P, 8)?;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut dirty = 0u64;
        let mut held = [0u64; 8];
        for _ in 0..2000 {
            let a = rng.next() % 64;
            let n = 1 + rng.next() % 6;
            let b = (a + n).min(64);
            match rng.next() % 5 {
                0 | 1 => {
                    t.wrote(a * P, (b - a) * P);
                    dirty |= pages(a, b) & tracked_mask;
                }
                2 => {
                    let tag = rng.next() % 8;
                    dirty |= held[tag as usize];
                    t.hold(tag, a * P, (b - a) * P);
                    held[tag as usize] = pages(a, b) & tracked_mask;
                }
                3 => {
                    let tag = rng.next() % 8;
                    dirty |= held[tag as usize];
                    held[tag as usize] = 0;
                    t.release(tag);
                }
                _ => {
                    let window = pages(a, b);
                    let want = (dirty | held.iter().fold(0, |m, h| m | h)) & window;
                    let got = report_pages(&mut t, a * P, (b - a) * P)?;
                    if got != want {
                        pr_err!("report {}..{}: got {:#x}, want {:#x}\n", a, b, got, want);
                    }
                    assert_eq!(got, want);
                    dirty &= !window;
                }
            }
        }
        assert!(!t.failed());
        let want = dirty | held.iter().fold(0, |m, h| m | h);
        assert_eq!(report_pages(&mut t, 0, 64 * P)?, want);
        Ok(())
    }
}
