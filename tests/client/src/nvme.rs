// SPDX-License-Identifier: GPL-2.0

//! A minimal NVMe admin-queue driver over a VFIO device: enough to make the controller DMA.
//!
//! It resets the controller, places an admin submission and completion queue in memory of
//! this process mapped into the IOAS, and issues Identify Controller, whose 4 KiB answer the
//! controller writes by DMA into another mapped page. Register access goes through the
//! device fd (pread/pwrite of region 0); completion is polled. The admin completion queue is
//! always interrupt-enabled on vector 0 (there is no IEN bit for it, and INTMS/INTMC apply
//! only to pin and MSI interrupts), so with MSI-X enabled through VFIO_DEVICE_SET_IRQS before
//! `init` each completion also raises MSI-X vector 0 (`nvme-irq`).
//!
//! The pages are mapped through a `DmaMap`: an IOAS of an iommufd context, or a VFIO group
//! whose container is iommufd (type1 compatibility). `new`, `map` and `enable` let a caller
//! map the same pages into several IOASes and restart the controller after a reset.

use crate::vfio::{Device, DmaMap, Error, Result};
use std::io;
use std::time::{Duration, Instant};

const PAGE: usize = 4096;
const BAR0: u32 = 0;
pub const REG_CAP: u64 = 0x00;
pub const REG_VS: u64 = 0x08;
pub const REG_CC: u64 = 0x14;
pub const REG_CSTS: u64 = 0x1c;
pub const REG_AQA: u64 = 0x24;
pub const REG_ASQ: u64 = 0x28;
pub const REG_ACQ: u64 = 0x30;
/// CC: EN, 4 KiB pages, NVM command set, 64-byte SQEs (2^6), 16-byte CQEs (2^4).
pub const CC_ENABLE: u64 = 1 | (6 << 16) | (4 << 20);
pub const QUEUE_ENTRIES: u64 = 16;

/// An Identify Controller (CNS 1) command with identifier `cid`, its data to `prp1`.
pub fn identify_sqe(cid: u16, prp1: u64) -> [u8; 64] {
    let mut sqe = [0u8; 64];
    sqe[0] = 0x06; // Identify
    sqe[2..4].copy_from_slice(&cid.to_le_bytes());
    sqe[24..32].copy_from_slice(&prp1.to_le_bytes()); // PRP1
    sqe[40..44].copy_from_slice(&1u32.to_le_bytes()); // CNS = 1: controller
    sqe
}

/// An admin or I/O command: opcode, command identifier, namespace, PRP1 and CDW10-12.
pub fn command_sqe(opcode: u8, cid: u16, nsid: u32, prp1: u64, cdw: [u32; 3]) -> [u8; 64] {
    let mut sqe = [0u8; 64];
    sqe[0] = opcode;
    sqe[2..4].copy_from_slice(&cid.to_le_bytes());
    sqe[4..8].copy_from_slice(&nsid.to_le_bytes());
    sqe[24..32].copy_from_slice(&prp1.to_le_bytes());
    for (i, d) in cdw.iter().enumerate() {
        sqe[40 + 4 * i..44 + 4 * i].copy_from_slice(&d.to_le_bytes());
    }
    sqe
}

/// IOVAs of the three pages: submission queue, completion queue, data.
pub const IOVA_SQ: u64 = 0x10_0000;
pub const IOVA_CQ: u64 = 0x20_0000;
pub const IOVA_DATA: u64 = 0x30_0000;

fn timeout(what: &str) -> Error {
    Error { what: format!("timed out waiting for {what}"), err: io::Error::from_raw_os_error(libc::ETIMEDOUT) }
}

/// A page of anonymous memory, mapped into the IOAS at a fixed IOVA.
pub struct DmaPage {
    ptr: *mut u8,
}

impl DmaPage {
    pub fn new() -> io::Result<Self> {
        // SAFETY: A fresh private anonymous mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr: p.cast() })
    }

    pub fn va(&self) -> u64 {
        self.ptr as u64
    }

    fn read_u32(&self, off: usize) -> u32 {
        assert!(off + 4 <= PAGE);
        // SAFETY: In bounds; volatile because the device writes this memory by DMA.
        unsafe { std::ptr::read_volatile(self.ptr.add(off).cast::<u32>()) }
    }

    pub fn write(&self, off: usize, data: &[u8]) {
        assert!(off + data.len() <= PAGE);
        for (i, b) in data.iter().enumerate() {
            // SAFETY: In bounds.
            unsafe { std::ptr::write_volatile(self.ptr.add(off + i), *b) };
        }
    }

    pub fn bytes(&self, off: usize, len: usize) -> Vec<u8> {
        assert!(off + len <= PAGE);
        // SAFETY: In bounds; volatile reads of memory the device may have written.
        (0..len).map(|i| unsafe { std::ptr::read_volatile(self.ptr.add(off + i)) }).collect()
    }
}

impl Drop for DmaPage {
    fn drop(&mut self) {
        // SAFETY: Our own mapping, unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), PAGE) };
    }
}

/// The controller with its admin queues.
pub struct Nvme<'a> {
    dev: &'a Device,
    sq: DmaPage,
    cq: DmaPage,
    pub data: DmaPage,
    sq_tail: u64,
    cq_head: u64,
    phase: u32,
    doorbell_stride: u64,
}

/// A completion: command ID and status field (0 on success).
pub struct Completion {
    pub cid: u16,
    pub status: u16,
}

impl<'a> Nvme<'a> {
    /// Maps the queues and data page at their IOVAs, resets and enables the controller.
    pub fn init(dev: &'a Device, dma: &dyn DmaMap) -> Result<Self> {
        let mut n = Self::new(dev)?;
        n.map(dma)?;
        n.enable()?;
        Ok(n)
    }

    /// The controller's pages, not yet mapped; the controller is not touched.
    pub fn new(dev: &'a Device) -> Result<Self> {
        let page = |what: &str| {
            DmaPage::new().map_err(|err| Error { what: format!("mmap {what}"), err })
        };
        Ok(Self {
            dev,
            sq: page("submission queue")?,
            cq: page("completion queue")?,
            data: page("data page")?,
            sq_tail: 0,
            cq_head: 0,
            phase: 1,
            doorbell_stride: 4,
        })
    }

    /// Maps the submission queue, completion queue and data page at their IOVAs.
    pub fn map(&self, dma: &dyn DmaMap) -> Result<()> {
        dma.map_dma(self.sq.va(), PAGE as u64, IOVA_SQ)?;
        dma.map_dma(self.cq.va(), PAGE as u64, IOVA_CQ)?;
        dma.map_dma(self.data.va(), PAGE as u64, IOVA_DATA)
    }

    /// The user addresses of the submission and completion queue pages (to map them
    /// elsewhere).
    pub fn queue_vas(&self) -> (u64, u64) {
        (self.sq.va(), self.cq.va())
    }

    /// Turns bus mastering on, resets the controller (CC.EN=0) and enables it with empty
    /// admin queues at IOVA_SQ / IOVA_CQ.
    pub fn enable(&mut self) -> Result<()> {
        let dev = self.dev;
        // Bus mastering: the device may now DMA (to the user's IOAS only).
        let cmd = dev.read_reg(7, 0x4, 4)? as u16;
        dev.write_reg(7, 0x4, 2, u64::from(cmd | 0x6))?;

        let cap = dev.read_reg(BAR0, REG_CAP, 8)?;
        let stride = 4u64 << ((cap >> 32) & 0xf);
        let to = Duration::from_millis(500 * ((cap >> 24) & 0xff).max(1)) + Duration::from_secs(30);
        dev.write_reg(BAR0, REG_CC, 4, 0)?;
        Self::wait_ready(dev, false, to)?;
        // A restarted controller starts with empty queues: no stale completion may look new.
        self.cq.write(0, &[0; PAGE]);
        self.sq_tail = 0;
        self.cq_head = 0;
        self.phase = 1;
        self.doorbell_stride = stride;
        dev.write_reg(BAR0, REG_AQA, 4, ((QUEUE_ENTRIES - 1) << 16) | (QUEUE_ENTRIES - 1))?;
        dev.write_reg(BAR0, REG_ASQ, 8, IOVA_SQ)?;
        dev.write_reg(BAR0, REG_ACQ, 8, IOVA_CQ)?;
        dev.write_reg(BAR0, REG_CC, 4, CC_ENABLE)?;
        Self::wait_ready(dev, true, to)
    }

    fn wait_ready(dev: &Device, ready: bool, to: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let csts = dev.read_reg(BAR0, REG_CSTS, 4)?;
            if csts & 0x2 != 0 {
                return Err(Error { what: "controller fatal status (CSTS.CFS)".into(), err: io::Error::from_raw_os_error(libc::EIO) });
            }
            if (csts & 1 != 0) == ready {
                return Ok(());
            }
            if start.elapsed() > to {
                return Err(timeout(if ready { "CSTS.RDY=1" } else { "CSTS.RDY=0" }));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Submits Identify Controller (CNS 1) into the data page's IOVA; waits for completion.
    pub fn identify_controller(&mut self, cid: u16, wait: Duration) -> Result<Completion> {
        self.admin(&identify_sqe(cid, IOVA_DATA), wait)
    }

    /// The doorbell stride of the running controller (from CAP.DSTRD), in bytes.
    pub fn doorbell_stride(&self) -> u64 {
        self.doorbell_stride
    }

    /// Submits one admin command `sqe` (its data pointers already filled in) and waits, at
    /// most `wait`, for its completion, polled.
    pub fn admin(&mut self, sqe: &[u8; 64], wait: Duration) -> Result<Completion> {
        self.sq.write((self.sq_tail as usize) * 64, sqe);
        self.sq_tail = (self.sq_tail + 1) % QUEUE_ENTRIES;
        self.dev.write_reg(BAR0, 0x1000, 4, self.sq_tail)?;

        let start = Instant::now();
        let off = (self.cq_head as usize) * 16;
        loop {
            let dw3 = self.cq.read_u32(off + 12);
            if (dw3 >> 16) & 1 == self.phase {
                self.cq_head = (self.cq_head + 1) % QUEUE_ENTRIES;
                if self.cq_head == 0 {
                    self.phase ^= 1;
                }
                self.dev.write_reg(BAR0, 0x1000 + self.doorbell_stride, 4, self.cq_head)?;
                return Ok(Completion { cid: dw3 as u16, status: (dw3 >> 17) as u16 });
            }
            if start.elapsed() > wait {
                return Err(timeout(&format!("the completion of admin command {:#04x}", sqe[0])));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Disables the controller.
    pub fn shutdown(&self) -> Result<()> {
        self.dev.write_reg(BAR0, REG_CC, 4, 0)
    }
}

/// An ASCII field of the Identify data, trimmed.
pub fn ascii(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end_matches([' ', '\0']).to_string()
}
