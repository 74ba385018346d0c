// SPDX-License-Identifier: GPL-2.0

//! Interrupts for the test client: eventfds for VFIO to signal, the host's vectors as
//! `/proc/interrupts` lists them, and malformed `VFIO_DEVICE_SET_IRQS` requests.

use crate::vfio::{self, Device, Error, Result};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// An eventfd (nonblocking): VFIO adds 1 to its counter for each interrupt it signals.
pub struct EventFd {
    file: File,
}

impl EventFd {
    pub fn new() -> Result<Self> {
        // SAFETY: No pointers; returns a new file descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(Error { what: "eventfd".into(), err: io::Error::last_os_error() });
        }
        // SAFETY: A new file descriptor that nothing else owns.
        Ok(Self { file: File::from(unsafe { OwnedFd::from_raw_fd(fd) }) })
    }

    pub fn raw(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Signals it (adds 1 to the counter), as a VMM's KVM does with a resample irqfd.
    pub fn signal(&self) -> Result<()> {
        match (&self.file).write(&1u64.to_ne_bytes()) {
            Ok(8) => Ok(()),
            Ok(n) => Err(Error {
                what: format!("eventfd write of {n} bytes"),
                err: io::Error::from_raw_os_error(libc::EIO),
            }),
            Err(err) => Err(Error { what: "eventfd write".into(), err }),
        }
    }

    /// Reads and resets the counter without waiting: 0 if nothing was signalled.
    pub fn take(&self) -> Result<u64> {
        let mut b = [0u8; 8];
        match (&self.file).read(&mut b) {
            Ok(8) => Ok(u64::from_ne_bytes(b)),
            Ok(n) => Err(Error {
                what: format!("eventfd read of {n} bytes"),
                err: io::Error::from_raw_os_error(libc::EIO),
            }),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(err) => Err(Error { what: "eventfd read".into(), err }),
        }
    }

    /// Waits up to `timeout` for the eventfd to be signalled, then reads and resets the
    /// counter: 0 if it was not signalled in time.
    pub fn wait(&self, timeout: Duration) -> Result<u64> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let mut p = libc::pollfd { fd: self.raw(), events: libc::POLLIN, revents: 0 };
            // SAFETY: One valid `pollfd`, exclusively borrowed for the call.
            let r = unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
            if r < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error { what: "poll eventfd".into(), err });
            }
            if r > 0 || left.is_zero() {
                return self.take();
            }
        }
    }
}

/// `VFIO_DEVICE_SET_IRQS` data for `DATA_EVENTFD`: the descriptors as native `i32`s (-1
/// detaches a vector's eventfd).
pub fn fds(fds: &[RawFd]) -> Vec<u8> {
    fds.iter().flat_map(|fd| fd.to_ne_bytes()).collect()
}

/// The number of lines of `/proc/interrupts` that contain `pattern` (an interrupt's name).
pub fn proc_interrupts(pattern: &str) -> Result<usize> {
    let text = std::fs::read_to_string("/proc/interrupts")
        .map_err(|err| Error { what: "read /proc/interrupts".into(), err })?;
    Ok(text.lines().filter(|l| l.contains(pattern)).count())
}

/// Malformed `VFIO_DEVICE_SET_IRQS` / `VFIO_DEVICE_GET_IRQ_INFO` requests, each with the
/// errno it got (`ok` if it was accepted), and well-formed ones that must be accepted
/// (`set_irqs_enable_one`, `after_bad_args_enable`). A request that enables vectors is
/// followed by a disable, so that one case cannot change the next one's outcome.
pub fn bad_irq_cases(dev: &Device) -> Result<Vec<(&'static str, String)>> {
    use vfio::*;
    const MSIX: u32 = VFIO_PCI_MSIX_IRQ_INDEX;
    const TRIGGER_FD: u32 = VFIO_IRQ_SET_ACTION_TRIGGER | VFIO_IRQ_SET_DATA_EVENTFD;
    const TRIGGER_NONE: u32 = VFIO_IRQ_SET_ACTION_TRIGGER | VFIO_IRQ_SET_DATA_NONE;
    let msix = dev.irq_info(MSIX)?.count;
    let msi = dev.irq_info(VFIO_PCI_MSI_IRQ_INDEX)?.count;
    let efds = (0..=msix.max(2)).map(|_| EventFd::new()).collect::<Result<Vec<_>>>()?;
    let efd = |n: usize| fds(&efds[..n].iter().map(EventFd::raw).collect::<Vec<_>>());
    let hdr = VFIO_IRQ_SET_HDR as u32;
    // Argument size = header + data, unless a case says otherwise.
    let set = |flags, index, start, count, data: &[u8]| {
        outcome(dev.set_irqs_raw(hdr + data.len() as u32, flags, index, start, count, data))
    };
    let disable = || {
        let _ = dev.set_irqs(TRIGGER_NONE, MSIX, 0, 0, &[]);
        if msi > 0 {
            let _ = dev.set_irqs(TRIGGER_NONE, VFIO_PCI_MSI_IRQ_INDEX, 0, 0, &[]);
        }
    };
    let mut out = Vec::new();

    // A disable of MSI-X, but with argsz below the header.
    out.push(("set_irqs_short_argsz", outcome(dev.set_irqs_raw(16, TRIGGER_NONE, MSIX, 0, 0, &[]))));
    out.push(("set_irqs_bad_index", set(TRIGGER_NONE, 5, 0, 0, &[])));
    out.push(("set_irqs_intx", set(TRIGGER_FD, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, &efd(1))));
    disable();
    let n = msix + 1;
    out.push(("set_irqs_beyond_count", set(TRIGGER_FD, MSIX, 0, n, &efd(n as usize))));
    disable();
    out.push((
        "set_irqs_two_data_types",
        set(VFIO_IRQ_SET_ACTION_TRIGGER | VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL, MSIX, 0, 1, &[1]),
    ));
    disable();
    out.push(("set_irqs_unknown_flags", set(TRIGGER_FD | 1 << 10, MSIX, 0, 1, &efd(1))));
    disable();
    // One eventfd fewer than count in argsz (the buffer holds them all). count stays within
    // the table, so that only the data length is wrong: 2, or 1 (no data) for one vector.
    let n = msix.clamp(1, 2);
    out.push((
        "set_irqs_short_data",
        outcome(dev.set_irqs_raw(hdr + 4 * (n - 1), TRIGGER_FD, MSIX, 0, n, &efd(n as usize))),
    ));
    disable();
    let null = File::open("/dev/null").map_err(|err| Error { what: "open /dev/null".into(), err })?;
    out.push(("set_irqs_not_an_eventfd", set(TRIGGER_FD, MSIX, 0, 1, &fds(&[null.as_raw_fd()]))));
    disable();
    out.push(("set_irqs_bad_fd", set(TRIGGER_FD, MSIX, 0, 1, &fds(&[9999]))));
    disable();
    out.push(("set_irqs_err", set(TRIGGER_FD, VFIO_PCI_ERR_IRQ_INDEX, 0, 1, &efd(1))));
    disable();
    out.push(("set_irqs_mask_msix", set(VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_DATA_NONE, MSIX, 0, 1, &[])));
    out.push(("set_irqs_unmask_msix", set(VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_DATA_NONE, MSIX, 0, 1, &[])));

    // MSI-X is NORESIZE: with vector 0 enabled, vector 1 cannot be added.
    out.push(("set_irqs_enable_one", set(TRIGGER_FD, MSIX, 0, 1, &efd(1))));
    out.push(("set_irqs_resize", set(TRIGGER_FD, MSIX, 1, 1, &fds(&[efds[1].raw()]))));
    disable();

    // MSI and MSI-X exclude each other.
    let r = if msi == 0 {
        "skipped".to_string()
    } else {
        match dev.set_irqs(TRIGGER_FD, MSIX, 0, 1, &efd(1)) {
            Ok(()) => set(TRIGGER_FD, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, &fds(&[efds[1].raw()])),
            Err(e) => format!("enabling MSI-X failed: {e}"),
        }
    };
    out.push(("set_irqs_msi_while_msix", r));
    disable();
    let r = if msi == 0 || msix == 0 {
        "skipped".to_string()
    } else {
        match dev.set_irqs(TRIGGER_FD, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, &efd(1)) {
            Ok(()) => set(TRIGGER_FD, MSIX, 0, 1, &fds(&[efds[1].raw()])),
            Err(e) => format!("enabling MSI failed: {e}"),
        }
    };
    out.push(("set_irqs_msix_while_msi", r));
    disable();

    out.push(("set_irqs_req_count2", set(TRIGGER_FD, VFIO_PCI_REQ_IRQ_INDEX, 0, 2, &fds(&[-1, -1]))));
    out.push(("get_irq_info_bad_index", outcome(dev.irq_info_raw(16, 5))));
    out.push(("get_irq_info_short_argsz", outcome(dev.irq_info_raw(8, MSIX))));

    // The device still takes a well-formed request.
    let r = dev
        .set_irqs(TRIGGER_FD, MSIX, 0, 1, &efd(1))
        .and_then(|()| dev.set_irqs(TRIGGER_NONE, MSIX, 0, 0, &[]));
    out.push(("after_bad_args_enable", r.map_or_else(|e| e.to_string(), |()| "ok".into())));
    Ok(out)
}
