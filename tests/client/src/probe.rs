// SPDX-License-Identifier: GPL-2.0

//! Probes of BAR mappings whose outcome may be a signal, and the reset race.
//!
//! A revoked mapping of a function that cannot decode (D3, memory disabled, removed) raises
//! SIGBUS on access. The client installs no signal handler: the access is made by a forked
//! child, and the parent reads the child's fate from `waitpid`. The child inherits the
//! mapping (and, for a mapping the parent had faulted in, its page-table entries: a mapping
//! that was not revoked still works in the child).

use crate::vfio::{self, Device, Error, Mapping, Result};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What became of a child that read some addresses: `ok`, `sigbus`, `sigsegv`,
/// `signal<N>`, `exit<N>`, `timeout` (killed), or `stuck` (killed, but still not gone after
/// 5 s: blocked in the kernel), and the values it read before that.
pub struct Probe {
    pub outcome: String,
    pub values: Vec<u32>,
}

fn os_err(what: &str) -> Error {
    Error { what: what.into(), err: io::Error::last_os_error() }
}

/// Forks a child that reads each of `addrs` (addresses of 4-byte aligned `u32`s inside live
/// mappings of this process) with a volatile load, sends each value to the parent through a
/// pipe, and exits. Waits at most `timeout` for it (then kills it: `timeout`).
///
/// Only call this from a single-threaded process: the child runs nothing but loads, `write`
/// and `_exit`.
pub fn in_child(addrs: &[usize], timeout: Duration) -> Result<Probe> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a writable array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(os_err("pipe2"));
    }
    let (rfd, wfd) = (fds[0], fds[1]);
    // SAFETY: fork has no memory-safety preconditions; the child below only does volatile
    // loads, write(2) and _exit(2), which are async-signal-safe.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = os_err("fork");
        // SAFETY: Our own descriptors, closed once.
        unsafe {
            libc::close(rfd);
            libc::close(wfd);
        }
        return Err(e);
    }
    if pid == 0 {
        for &a in addrs {
            // SAFETY: The caller passes addresses of u32s inside live mappings, which the
            // child inherited. A revoked mapping raises SIGBUS here, which ends the child.
            let v = unsafe { std::ptr::read_volatile(a as *const u32) };
            // SAFETY: Writes 4 bytes from a live local to our pipe; _exit never returns.
            unsafe {
                if libc::write(wfd, (&v as *const u32).cast(), 4) != 4 {
                    libc::_exit(3);
                }
            }
        }
        // SAFETY: Ends the child without running anything of the parent's.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: The parent's copy of the write end, closed once.
    unsafe { libc::close(wfd) };

    let end = Instant::now() + timeout;
    let mut bytes = Vec::new();
    let mut timed_out = false;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        let mut p = libc::pollfd { fd: rfd, events: libc::POLLIN, revents: 0 };
        // SAFETY: One valid pollfd for the call.
        let r = unsafe { libc::poll(&mut p, 1, left.as_millis().clamp(1, i32::MAX as u128) as i32) };
        if r < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if r == 0 {
            continue;
        }
        let mut b = [0u8; 256];
        // SAFETY: Reads into a live local buffer of that size.
        let n = unsafe { libc::read(rfd, b.as_mut_ptr().cast(), b.len()) };
        if n <= 0 {
            break; // EOF: the child is gone
        }
        bytes.extend_from_slice(&b[..n as usize]);
    }
    // SAFETY: Our read end, closed once.
    unsafe { libc::close(rfd) };
    if timed_out {
        // SAFETY: Signals our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // A child blocked in the kernel (uninterruptible) does not die of SIGKILL until it wakes:
    // wait a few seconds for it, then report it as stuck rather than wait forever.
    let mut status = 0;
    let reap_end = Instant::now() + if timed_out { Duration::from_secs(5) } else { Duration::from_secs(3600) };
    loop {
        // SAFETY: Waits for our own child; `status` is a writable int.
        let r = unsafe { libc::waitpid(pid, &mut status, if timed_out { libc::WNOHANG } else { 0 }) };
        if r == pid {
            break;
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Err(os_err("waitpid"));
        }
        if Instant::now() > reap_end {
            return Ok(Probe { outcome: "stuck".into(), values: Vec::new() });
        }
        if r == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let values = bytes.chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect();
    let outcome = if timed_out {
        "timeout".to_string()
    } else if libc::WIFSIGNALED(status) {
        match libc::WTERMSIG(status) {
            libc::SIGBUS => "sigbus".to_string(),
            libc::SIGSEGV => "sigsegv".to_string(),
            s => format!("signal{s}"),
        }
    } else if libc::WEXITSTATUS(status) == 0 {
        "ok".to_string()
    } else {
        format!("exit{}", libc::WEXITSTATUS(status))
    };
    Ok(Probe { outcome, values })
}

/// A 4-byte pread of region `index` at `offset`: `(outcome, value)`, the outcome `ok` or the
/// errno's name (`EIO` for a function that cannot decode).
pub fn pread_u32(dev: &Device, index: u32, offset: u64) -> (String, Option<u32>) {
    let mut b = [0u8; 4];
    match dev.read_region(index, offset, &mut b) {
        Ok(()) => ("ok".into(), Some(u32::from_le_bytes(b))),
        Err(e) => (vfio::errno_name(&e.err), None),
    }
}

/// How the resets of `reset_race` are made.
#[derive(Clone, Copy)]
pub enum ResetKind {
    /// `VFIO_DEVICE_RESET`.
    Ioctl,
    /// PCIe Device Control Initiate-FLR (bit 15 at PCIe capability + 8), written through the
    /// config region.
    Flr { devctl: u64 },
}

/// One reset of `reset_race`, as the reader saw it.
pub struct ResetSpan {
    /// How long the reset call took.
    pub ms: u128,
    /// The longest stretch of the call in which no read completed.
    pub held_ms: u128,
    /// Where that stretch began, from the call's start.
    pub held_from_ms: u128,
    /// Reads that completed within the call.
    pub reads: usize,
}

/// The result of `reset_race`.
pub struct Race {
    pub resets: usize,
    pub reset_errors: Vec<String>,
    pub spans: Vec<ResetSpan>,
    pub reads_total: u64,
    pub max_read_us: u128,
}

/// A function in FLR may not be accessed: `pcie_flr` sleeps this long after initiating it,
/// with the function's BARs revoked.
pub const FLR_WAIT: Duration = Duration::from_millis(100);
/// A reset held the reader off if no read completed for this long within it: FLR's wait, less
/// the time a read already inside the function when the mappings were revoked may take to
/// complete.
pub const HELD: Duration = Duration::from_millis(90);

/// One thread reads `map` at `at` in a tight loop (each read a single uncached MMIO load);
/// this thread makes `n` resets of `dev`, 30 ms apart. For each reset, finds the longest
/// stretch of the call in which no read completed: where faults and BAR accesses wait for a
/// reset, each FLR (of at least [`FLR_WAIT`]) holds the reader off for at least [`HELD`]; where
/// they do not, reads go on completing every few microseconds. (The work before the library
/// revokes the mappings, the config emulation and the write of the other Device Control bits,
/// takes what it takes under TCG; the stretch does not depend on it.)
pub fn reset_race(dev: &Device, map: &Mapping, at: usize, kind: ResetKind, n: usize) -> Result<Race> {
    let addr = map.addr(at);
    let stop = AtomicBool::new(false);
    let in_reset = AtomicBool::new(false);
    let mut calls = Vec::with_capacity(n);
    let mut reset_errors = Vec::new();

    let (reads_total, max_read, done_times) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut total = 0u64;
            let mut max = Duration::ZERO;
            let mut times = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                // SAFETY: `addr` is inside `map`, which outlives this scope; a volatile
                // 32-bit MMIO load. (A SIGBUS here would end the client: a reset must make
                // accesses wait, not fail.)
                let _ = unsafe { std::ptr::read_volatile(addr as *const u32) };
                let t1 = Instant::now();
                total += 1;
                max = max.max(t1 - t0);
                if in_reset.load(Ordering::SeqCst) {
                    times.push(t1);
                }
            }
            (total, max, times)
        });
        // Let the reader get going (and fault the page in) before the first reset.
        std::thread::sleep(Duration::from_millis(100));
        for _ in 0..n {
            in_reset.store(true, Ordering::SeqCst);
            let start = Instant::now();
            let r = match kind {
                ResetKind::Ioctl => dev.reset(),
                ResetKind::Flr { devctl } => {
                    let cfg = vfio::VFIO_PCI_CONFIG_REGION_INDEX;
                    dev.read_reg(cfg, devctl, 2).and_then(|v| dev.write_reg(cfg, devctl, 2, v | 0x8000))
                }
            };
            let end = Instant::now();
            in_reset.store(false, Ordering::SeqCst);
            if let Err(e) = r {
                reset_errors.push(vfio::errno_name(&e.err));
            }
            calls.push((start, end));
            std::thread::sleep(Duration::from_millis(30));
        }
        std::thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap_or_default()
    });

    let spans = calls
        .iter()
        .map(|&(s, e)| {
            let done: Vec<Instant> = done_times.iter().copied().filter(|&t| t >= s && t <= e).collect();
            // The stretches between the call's start, each completion and the call's end.
            let mut held = (Duration::ZERO, Duration::ZERO);
            let mut prev = s;
            for t in done.iter().copied().chain(std::iter::once(e)) {
                if t - prev > held.0 {
                    held = (t - prev, prev - s);
                }
                prev = t;
            }
            ResetSpan {
                ms: (e - s).as_millis(),
                held_ms: held.0.as_millis(),
                held_from_ms: held.1.as_millis(),
                reads: done.len(),
            }
        })
        .collect();
    Ok(Race {
        resets: calls.len(),
        reset_errors,
        spans,
        reads_total,
        max_read_us: max_read.as_micros(),
    })
}
