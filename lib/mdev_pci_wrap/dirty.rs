// SPDX-License-Identifier: GPL-2.0

//! The dirty-page tracker behind DMA logging (`VFIO_DEVICE_FEATURE_DMA_LOGGING_*`).
//!
//! A wrapped VF writes the user's memory by DMA without the library seeing it; its vendor
//! knows where it may write (the RX buffers it saw posted, the descriptor rings) and tells the
//! tracker:
//!
//! - [`Tracker::wrote`]: the device wrote, or may have written, a range: it is reported once,
//!   by the next report that covers it;
//! - [`Tracker::hold`]: the device may write a range until the vendor releases it (an RX
//!   buffer the hardware owns, a ring): it is reported by every report that covers it, and
//!   once more after [`Tracker::release`].
//!
//! [`Tracker::report`] gives the dirty ranges inside a window of IOVAs (for `iova_bitmap_set`)
//! and forgets what it reported of the [`Tracker::wrote`] ranges, as `log_read_and_clear`
//! must. Only what is inside the ranges logging was started for is kept. Reports are
//! supersets: ranges are kept whole pages of the page size logging was started with.
//!
//! It never loses a write: when it cannot record one (no memory, too many held ranges), it
//! fails every later report (`ENOMEM`), and the uAPI tells userspace to take every page as
//! dirty when a report fails.

use kernel::prelude::*;

/// A range of IOVAs, `[start, start + len)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Range {
    /// First IOVA.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Range {
    /// The range `[start, start + len)`.
    pub const fn new(start: u64, len: u64) -> Self {
        Self { start, len }
    }

    /// One past the last IOVA, saturating at the end of the IOVA space.
    fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }

    /// The part of `self` inside `[start, end)`, if any.
    fn clip(&self, start: u64, end: u64) -> Option<Range> {
        let s = self.start.max(start);
        let e = self.end().min(end);
        (s < e).then(|| Range::new(s, e - s))
    }
}

/// The smallest page size logging takes (`VFIO_DEVICE_FEATURE_DMA_LOGGING_START`).
pub const MIN_PAGE_SIZE: u64 = 4096;

/// The dirty state of one logging session.
pub struct Tracker {
    page: u64,
    /// The ranges logging was started for: sorted, disjoint.
    tracked: KVec<Range>,
    /// Written since they were last reported: sorted, disjoint, not adjacent.
    written: KVec<Range>,
    /// Held by the device, by the vendor's tag.
    held: KVec<(u64, Range)>,
    max_held: usize,
    /// A write could not be recorded: every report fails.
    failed: bool,
}

impl Tracker {
    /// A session for `ranges` with pages of `page_size` bytes, of which the vendor will hold
    /// at most `max_held` at once. `EINVAL` for a page size that is not a power of two of at
    /// least [`MIN_PAGE_SIZE`], no range, an empty range, one that wraps around the IOVA
    /// space, or overlapping ones; `ENOMEM`.
    pub fn new(ranges: &[Range], page_size: u64, max_held: usize) -> Result<Self> {
        if !page_size.is_power_of_two() || page_size < MIN_PAGE_SIZE || ranges.is_empty() {
            return Err(EINVAL);
        }
        let mut tracked = KVec::with_capacity(ranges.len(), GFP_KERNEL)?;
        for r in ranges {
            if r.len == 0 || r.start.checked_add(r.len).is_none() {
                return Err(EINVAL);
            }
            tracked.push(*r, GFP_KERNEL)?;
        }
        tracked.sort_unstable_by_key(|r| r.start);
        if tracked.windows(2).any(|w| w[0].end() > w[1].start) {
            return Err(EINVAL);
        }
        Ok(Self {
            page: page_size,
            tracked,
            written: KVec::new(),
            held: KVec::with_capacity(max_held, GFP_KERNEL)?,
            max_held,
            failed: false,
        })
    }

    /// The page size of the session.
    pub fn page_size(&self) -> u64 {
        self.page
    }

    /// Whether a write could not be recorded (every report fails).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// `[start, start + len)` widened to whole pages.
    fn pages(&self, start: u64, len: u64) -> Option<Range> {
        if len == 0 {
            return None;
        }
        let mask = self.page - 1;
        let s = start & !mask;
        let e = start.saturating_add(len).saturating_add(mask) & !mask;
        // (The last page of the IOVA space: `e` saturated and rounded down to `s`.)
        let e = if e <= s { u64::MAX } else { e };
        Some(Range::new(s, e - s))
    }

    /// Adds `r` to the written ranges, merging it with those it overlaps or touches.
    fn add_written(&mut self, r: Range) -> Result {
        let (mut s, mut e) = (r.start, r.end());
        // The first range that ends at or after `s`: those before it stay as they are.
        let first = self.written.partition_point(|w| w.end() < s);
        let mut last = first;
        while last < self.written.len() && self.written[last].start <= e {
            s = s.min(self.written[last].start);
            e = e.max(self.written[last].end());
            last += 1;
        }
        let merged = Range::new(s, e - s);
        if last > first {
            self.written[first] = merged;
            // Drop the others it swallowed, keeping the order.
            let n = last - first - 1;
            if n > 0 {
                let len = self.written.len();
                self.written[first + 1..].rotate_left(n);
                self.written.truncate(len - n);
            }
            Ok(())
        } else {
            insert(&mut self.written, first, merged)
        }
    }

    /// The device wrote, or may have written, `[iova, iova + len)`: the next report that
    /// covers it has it. (Outside the tracked ranges: nothing to record.)
    pub fn wrote(&mut self, iova: u64, len: u64) {
        let Some(r) = self.pages(iova, len) else {
            return;
        };
        for i in 0..self.tracked.len() {
            let t = self.tracked[i];
            if let Some(c) = r.clip(t.start, t.end()) {
                if self.add_written(c).is_err() {
                    self.failed = true;
                }
            }
        }
    }

    /// The device may write `[iova, iova + len)` until [`Tracker::release`] of `tag`: every
    /// report covering it has it. A tag held already is moved to the new range (the old one
    /// counts as written). Past the session's `max_held` the tracker fails.
    pub fn hold(&mut self, tag: u64, iova: u64, len: u64) {
        self.release(tag);
        let Some(r) = self.pages(iova, len) else {
            return;
        };
        if self.held.len() >= self.max_held || self.held.push((tag, r), GFP_KERNEL).is_err() {
            // Not kept: reported once at least, and reports fail from now on.
            self.wrote(iova, len);
            self.failed = true;
        }
    }

    /// The device no longer writes what `tag` held: reported once more (it may have written
    /// it since the last report), then no longer. Nothing if `tag` is not held.
    pub fn release(&mut self, tag: u64) {
        if let Some(i) = self.held.iter().position(|(t, _)| *t == tag) {
            if let Ok((_, r)) = self.held.remove(i) {
                self.wrote(r.start, r.len);
            }
        }
    }

    /// How many ranges are held.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Gives `set` every dirty range inside `[iova, iova + len)` (clipped to it; ranges may
    /// overlap), then forgets the written ones inside it. `EINVAL` for an empty window or
    /// one that wraps; `ENOMEM` once a write could not be recorded (userspace then takes
    /// every page as dirty).
    pub fn report(&mut self, iova: u64, len: u64, mut set: impl FnMut(u64, u64)) -> Result {
        if self.failed {
            return Err(ENOMEM);
        }
        let end = iova.checked_add(len).ok_or(EINVAL)?;
        if len == 0 {
            return Err(EINVAL);
        }
        for w in self.written.iter() {
            if let Some(c) = w.clip(iova, end) {
                set(c.start, c.len);
            }
        }
        for (_, h) in self.held.iter() {
            // Held ranges are inside the tracked ones only in part: clip to both.
            for t in self.tracked.iter() {
                if let Some(c) = h.clip(t.start, t.end()).and_then(|c| c.clip(iova, end)) {
                    set(c.start, c.len);
                }
            }
        }
        self.forget(iova, end)
    }

    /// Removes `[start, end)` from the written ranges.
    fn forget(&mut self, start: u64, end: u64) -> Result {
        let mut i = self.written.partition_point(|w| w.end() <= start);
        while i < self.written.len() && self.written[i].start < end {
            let w = self.written[i];
            let before = (w.start < start).then(|| Range::new(w.start, start - w.start));
            let after = (w.end() > end).then(|| Range::new(end, w.end() - end));
            match (before, after) {
                (None, None) => {
                    self.written.remove(i).map_err(|_| EINVAL)?;
                }
                (Some(b), None) => {
                    self.written[i] = b;
                    i += 1;
                }
                (None, Some(a)) => {
                    self.written[i] = a;
                    i += 1;
                }
                (Some(b), Some(a)) => {
                    self.written[i] = b;
                    if insert(&mut self.written, i + 1, a).is_err() {
                        // The part after the window would be lost: fail instead.
                        self.failed = true;
                        return Err(ENOMEM);
                    }
                    i += 2;
                }
            }
        }
        Ok(())
    }
}

/// Inserts `r` at `i` of `v`, growing it if needed.
fn insert(v: &mut KVec<Range>, i: usize, r: Range) -> Result {
    v.reserve(1, GFP_KERNEL)?;
    v.insert_within_capacity(i, r).map_err(|_| EINVAL)
}
