// SPDX-License-Identifier: GPL-2.0

//! A random-input fuzzer over everything a user can do to a VFIO device fd: every device
//! ioctl (with random `argsz`, flags, indexes, offsets, counts and payloads), region reads and
//! writes at random offsets and sizes (config space included), mmap at random offsets, lengths
//! and flags, and `VFIO_DEVICE_SET_IRQS` with random eventfds. Each result is counted by errno;
//! nothing a user sends may crash, hang or leak the kernel: the test run judges the kernel log,
//! and the device must still work afterwards (the test opens it again and does DMA).
//!
//! The sequence is reproducible from its seed.

use crate::irq::EventFd;
use crate::vfio::{self, Device, Result};
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// xorshift64*: small, fast, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }

    /// An offset into something of `size` bytes, biased towards its edges.
    fn offset(&mut self, size: u64) -> u64 {
        match self.below(8) {
            0 => 0,
            1 => size.saturating_sub(1),
            2 => size.saturating_sub(4),
            3 => size,
            4 => size + self.below(64),
            5 => self.next(),
            _ => self.below(size.max(1)),
        }
    }

    fn len(&mut self) -> usize {
        match self.below(6) {
            0 => 1,
            1 => 2,
            2 => 4,
            3 => 8,
            4 => self.below(64) as usize,
            _ => self.below(4097) as usize,
        }
    }
}

const VFIO_TYPE: u64 = b';' as u64;

const fn vfio_io(nr: u64) -> u64 {
    (VFIO_TYPE << 8) | (100 + nr)
}

/// The device ioctls (GET_INFO .. MIG_GET_PRECOPY_INFO) and a few numbers nobody defines.
const IOCTLS: &[u64] = &[
    vfio_io(7),
    vfio_io(8),
    vfio_io(9),
    vfio_io(10),
    vfio_io(12),
    vfio_io(13),
    vfio_io(16),
    vfio_io(17),
    vfio_io(21),
    vfio_io(3),
    vfio_io(60),
    0,
];
const VFIO_DEVICE_RESET: u64 = vfio_io(11);
const SET_IRQS: u64 = vfio_io(10);

/// The outcome counts, by errno name.
#[derive(Default)]
struct Tally(BTreeMap<String, u64>);

impl Tally {
    fn add<T>(&mut self, what: &str, r: std::io::Result<T>) {
        let k = match r {
            Ok(_) => format!("{what}:ok"),
            Err(e) => format!("{what}:{}", vfio::errno_name(&e)),
        };
        *self.0.entry(k).or_default() += 1;
    }
}

/// Runs `ops` random operations with `seed` on the device at `sysfs`; prints progress to
/// stderr every 10% and the counts at the end. Fails if one operation takes longer than
/// `stall` (a hang).
pub fn fuzz(sysfs: &str, ops: u64, seed: u64) -> Result<()> {
    let (_iommufd, dev) = crate::cdev_attach(sysfs)?;
    let mut rng = Rng(seed | 1);
    let mut tally = Tally::default();
    let efds: Vec<EventFd> = (0..4).map(|_| EventFd::new()).collect::<Result<_>>()?;
    let stall = Duration::from_secs(20);
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut resets = 0u64;
    let sizes: Vec<u64> = (0..9).map(|i| dev.region_info(i).map(|r| r.size).unwrap_or(0)).collect();
    let mut buf = vec![0u8; 8192];
    for n in 0..ops {
        let t = Instant::now();
        match rng.below(100) {
            0..=19 => raw_ioctl(&dev, &mut rng, &mut tally, &mut buf, &efds),
            20..=44 => {
                let (r, off, len) = region_target(&mut rng, &sizes);
                let pos = (u64::from(r) << 40).wrapping_add(off);
                tally.add("pread", dev.file.read_at(&mut buf[..len], pos));
            }
            45..=69 => {
                let (r, off, len) = region_target(&mut rng, &sizes);
                for b in buf[..len].iter_mut() {
                    *b = rng.next() as u8;
                }
                let pos = (u64::from(r) << 40).wrapping_add(off);
                tally.add("pwrite", dev.file.write_at(&buf[..len], pos));
            }
            70..=79 => mmap(&dev, &mut rng, &mut tally, &sizes),
            80..=94 => set_irqs(&dev, &mut rng, &mut tally, &efds),
            _ => {
                // A well-formed config write to a random register, most often a header one.
                let off = if rng.below(2) == 0 { rng.below(0x40) } else { rng.below(sizes[7].max(1)) };
                let w = rng.pick(&[1usize, 2, 4]);
                let off = off & !(w as u64 - 1);
                let v = rng.next().to_le_bytes();
                tally.add("config", dev.file.write_at(&v[..w], (7u64 << 40) + off));
            }
        }
        // A reset now and then (each takes a function-level reset: slow).
        if rng.below(20_000) == 0 {
            // SAFETY: VFIO_DEVICE_RESET takes no argument.
            tally.add("reset", unsafe { ioctl(&dev, VFIO_DEVICE_RESET, 0) });
            resets += 1;
        }
        let took = t.elapsed();
        slowest = slowest.max(took);
        if took > stall {
            return Err(vfio::Error {
                what: format!("operation {n} took {took:?}: a hang"),
                err: std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
            });
        }
        if ops >= 10 && (n + 1) % (ops / 10) == 0 {
            eprintln!("[fuzz] {}/{} operations, {:.0} s", n + 1, ops, start.elapsed().as_secs_f64());
        }
    }
    println!("fuzz_ops={ops}");
    println!("fuzz_seed={seed}");
    println!("fuzz_resets={resets}");
    println!("fuzz_seconds={:.1}", start.elapsed().as_secs_f64());
    println!("fuzz_slowest_ms={}", slowest.as_millis());
    let summary: Vec<String> = tally.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("fuzz_outcomes={}", summary.join(","));
    Ok(())
}

/// A region index (sometimes past the last), an offset in it and a length.
fn region_target(rng: &mut Rng, sizes: &[u64]) -> (u32, u64, usize) {
    let r = rng.below(11) as u32;
    let size = sizes.get(r as usize).copied().unwrap_or(0);
    (r, rng.offset(size), rng.len())
}

/// Runs an ioctl with an integer or pointer argument.
///
/// # Safety
///
/// `arg` must be what `req` may read or write: an integer, or a pointer to enough memory.
unsafe fn ioctl(dev: &Device, req: u64, arg: libc::c_ulong) -> std::io::Result<i32> {
    // SAFETY: By the caller.
    let r = unsafe { libc::ioctl(dev.file.as_raw_fd(), req as _, arg) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A device ioctl with a random buffer whose head is sometimes plausible.
fn raw_ioctl(dev: &Device, rng: &mut Rng, tally: &mut Tally, buf: &mut [u8], efds: &[EventFd]) {
    let cmd = rng.pick(IOCTLS);
    let len = 4096;
    for b in buf[..len].iter_mut() {
        *b = rng.next() as u8;
    }
    // argsz: usually in the buffer, sometimes small, never past it.
    let argsz = match rng.below(4) {
        0 => rng.below(32) as u32,
        1 => rng.below(len as u64) as u32,
        _ => 16 + 4 * rng.below(8) as u32,
    };
    buf[0..4].copy_from_slice(&argsz.to_ne_bytes());
    if rng.below(2) == 0 {
        // A small index / flags word.
        let v = rng.below(12) as u32;
        buf[8..12].copy_from_slice(&v.to_ne_bytes());
    }
    if cmd == SET_IRQS && rng.below(2) == 0 {
        let fd = efds[rng.below(efds.len() as u64) as usize].raw();
        buf[20..24].copy_from_slice(&fd.to_ne_bytes());
    }
    // SAFETY: `buf` is 8 KiB of our memory and `argsz` stays within its first 4 KiB; an
    // ioctl that writes back writes at most `argsz` bytes (or nothing for unknown numbers).
    let r = unsafe { ioctl(dev, cmd, buf.as_mut_ptr() as libc::c_ulong) };
    tally.add(&format!("ioctl{}", cmd & 0xff), r);
}

/// An mmap at a random region offset with random length and flags, unmapped at once.
fn mmap(dev: &Device, rng: &mut Rng, tally: &mut Tally, sizes: &[u64]) {
    let r = rng.below(10);
    let size = sizes.get(r as usize).copied().unwrap_or(0);
    let page = 4096u64;
    let off = if rng.below(4) == 0 { rng.offset(size) } else { rng.below(size / page + 2) * page };
    let len = match rng.below(4) {
        0 => 0,
        1 => page as usize,
        2 => size as usize,
        _ => (rng.below(8) * page) as usize,
    };
    let flags = rng.pick(&[libc::MAP_SHARED, libc::MAP_PRIVATE, libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE]);
    let prot = rng.pick(&[libc::PROT_READ, libc::PROT_READ | libc::PROT_WRITE, libc::PROT_NONE]);
    let pos = (r << 40).wrapping_add(off);
    let hint = if flags & libc::MAP_FIXED_NOREPLACE != 0 { 0x7f00_0000_0000usize } else { 0 };
    // SAFETY: A new mapping of the device fd at an address the kernel chooses (or a fixed
    // one that must not replace anything); unmapped just below, never touched.
    let p = unsafe { libc::mmap(hint as *mut libc::c_void, len, prot, flags, dev.file.as_raw_fd(), pos as libc::off_t) };
    if p == libc::MAP_FAILED {
        tally.add::<()>("mmap", Err(std::io::Error::last_os_error()));
    } else {
        tally.add("mmap", Ok(()));
        // SAFETY: Our mapping of `len` bytes.
        unsafe { libc::munmap(p, len) };
    }
}

/// `VFIO_DEVICE_SET_IRQS` with random index, range, flags and data.
fn set_irqs(dev: &Device, rng: &mut Rng, tally: &mut Tally, efds: &[EventFd]) {
    let index = rng.below(6) as u32;
    let start = rng.pick(&[0u32, 0, 1, 2, 3, u32::MAX]);
    let count = rng.pick(&[0u32, 1, 1, 2, 3, 4, 64, u32::MAX]);
    let data_type = rng.pick(&[1u32, 2, 4, 0, 3, 6]);
    let action = rng.pick(&[1u32 << 5, 1 << 5, 1 << 3, 1 << 4, 0, 3 << 3]);
    let flags = (data_type | action) | if rng.below(20) == 0 { 1 << 9 } else { 0 };
    let n = count.min(8) as usize;
    let mut data = Vec::new();
    match data_type {
        4 => {
            for _ in 0..n {
                let fd = match rng.below(4) {
                    0 => -1,
                    1 => rng.next() as i32,
                    _ => efds[rng.below(efds.len() as u64) as usize].raw(),
                };
                data.extend_from_slice(&fd.to_ne_bytes());
            }
        }
        2 => data.extend((0..n).map(|_| rng.below(2) as u8)),
        _ => {}
    }
    let argsz = match rng.below(5) {
        0 => rng.below(40) as u32,
        _ => (vfio::VFIO_IRQ_SET_HDR + data.len()) as u32,
    };
    let argsz = argsz.min((vfio::VFIO_IRQ_SET_HDR + data.len()) as u32);
    tally.add("set_irqs", dev.set_irqs_raw(argsz, flags, index, start, count, &data));
}
