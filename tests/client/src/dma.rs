// SPDX-License-Identifier: GPL-2.0

//! Memory for a device's DMA: whole pages of anonymous memory, mapped into an IOAS by the
//! caller, read and written volatile (the device reads and writes it behind the compiler's
//! back).

use crate::vfio::{Error, Result};
use std::io;

const PAGE: usize = 4096;

/// Anonymous memory of whole pages for the device's DMA, read and written volatile (the
/// device reads and writes it behind the compiler's back).
pub struct DmaMem {
    ptr: *mut u8,
    len: usize,
}

impl DmaMem {
    /// `len` bytes, rounded up to whole pages.
    pub fn new(len: usize) -> Result<Self> {
        let len = len.div_ceil(PAGE) * PAGE;
        // SAFETY: A fresh private anonymous mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error { what: format!("mmap {len} bytes"), err: io::Error::last_os_error() });
        }
        Ok(Self { ptr: p.cast(), len })
    }

    pub fn va(&self) -> u64 {
        self.ptr as u64
    }

    pub fn read_u32(&self, off: usize) -> u32 {
        assert!(off.is_multiple_of(4) && off + 4 <= self.len);
        // SAFETY: In bounds and aligned (checked).
        unsafe { std::ptr::read_volatile(self.ptr.add(off).cast::<u32>()) }
    }

    pub fn read_u64(&self, off: usize) -> u64 {
        assert!(off.is_multiple_of(8) && off + 8 <= self.len);
        // SAFETY: In bounds and aligned (checked).
        unsafe { std::ptr::read_volatile(self.ptr.add(off).cast::<u64>()) }
    }

    pub fn write_u32(&self, off: usize, v: u32) {
        assert!(off.is_multiple_of(4) && off + 4 <= self.len);
        // SAFETY: In bounds and aligned (checked).
        unsafe { std::ptr::write_volatile(self.ptr.add(off).cast::<u32>(), v) }
    }

    pub fn write_u64(&self, off: usize, v: u64) {
        assert!(off.is_multiple_of(8) && off + 8 <= self.len);
        // SAFETY: In bounds and aligned (checked).
        unsafe { std::ptr::write_volatile(self.ptr.add(off).cast::<u64>(), v) }
    }

    pub fn read(&self, off: usize, len: usize) -> Vec<u8> {
        assert!(off + len <= self.len);
        // SAFETY: In bounds (checked).
        (0..len).map(|i| unsafe { std::ptr::read_volatile(self.ptr.add(off + i)) }).collect()
    }

    pub fn write(&self, off: usize, data: &[u8]) {
        assert!(off + data.len() <= self.len);
        for (i, b) in data.iter().enumerate() {
            // SAFETY: In bounds (checked).
            unsafe { std::ptr::write_volatile(self.ptr.add(off + i), *b) };
        }
    }

    /// Its length (whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Writes `data` at `off` as one volatile store of `N` bytes (an NVMe command: the
    /// device must not see it half written by the compiler's choice of stores).
    pub fn write_block<const N: usize>(&self, off: usize, data: &[u8; N]) {
        assert!(off + N <= self.len);
        // SAFETY: In bounds (checked); `[u8; N]` needs no alignment.
        unsafe { std::ptr::write_volatile(self.ptr.add(off).cast::<[u8; N]>(), *data) }
    }
}

impl Drop for DmaMem {
    fn drop(&mut self) {
        // SAFETY: Our own mapping, unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

