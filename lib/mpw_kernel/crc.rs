// SPDX-License-Identifier: GPL-2.0

//! CRC-32 over byte slices: the kernel's table-driven or accelerated implementation.
//!
//! C header: [`include/linux/crc32.h`](srctree/include/linux/crc32.h).

use crate::bindings;

/// `crc32_le`: the IEEE CRC-32, least significant bit first, of `data` continuing from `crc`
/// (no pre- or post-inversion: callers that want the common form seed with `!0` and invert
/// the result).
pub fn crc32_le(crc: u32, data: &[u8]) -> u32 {
    // SAFETY: `data` is valid for reads of `data.len()` bytes for the duration of the call,
    // and `crc32_le` only reads them.
    unsafe { bindings::crc32_le(crc, data.as_ptr().cast(), data.len()) }
}
