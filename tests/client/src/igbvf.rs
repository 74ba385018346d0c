// SPDX-License-Identifier: GPL-2.0

//! A userspace driver for the Intel 82576 virtual function (8086:10ca, which QEMU's `igb`
//! emulates) over VFIO, and the `igbvf-ping` command built on it.
//!
//! The driver does what Linux's igbvf driver does (drivers/net/ethernet/intel/igbvf/: regs.h,
//! defines.h, mbx.h, mbx.c, vf.c, netdev.c), with BAR0 read and written through the device
//! fd (pread/pwrite of region 0: each access is one 32-bit MMIO access, as QEMU's igbvf
//! requires), descriptor rings and packet buffers in memory of this process mapped into the
//! user's IOAS, and MSI-X vectors signalled to eventfds (VFIO_DEVICE_SET_IRQS):
//!
//! - `reset`: VF software reset (CTRL.RST), wait until the PF is not resetting (mailbox
//!   RSTI/RSTD), then the mailbox's VF_RESET request; the PF answers with the VF's MAC
//!   address (ACK) or without one (NACK). `set_mac`, `set_lpe`, `set_multicast` are the other
//!   requests the PF keeps state for (the state a migration has to replay).
//! - `init_rings`: one RX and one TX ring (queue 0), programmed in the order of
//!   igbvf_configure_tx / igbvf_configure_rx (migration notes §3.4), advanced descriptors,
//!   one 2 KiB buffer per descriptor; `post_rx` hands the free RX buffers to the hardware.
//! - `enable_msix` / `enable_interrupts`: three MSI-X vectors, TX queue 0 on vector 0, RX
//!   queue 0 on vector 1, the mailbox and other causes on vector 2 (IVAR0, IVAR_MISC), as
//!   igbvf_configure_msix assigns them, with auto-clear, auto-mask and the mask (EIAC, EIAM,
//!   EIMS) as igbvf_irq_enable sets them.
//! - `send`, `poll_rx`: one frame out; the frames in, after the RX vector's interrupt.
//! - `ring_state`: head and tail as the device has them, the driver's next_to_use and
//!   next_to_clean, the rings' and the posted buffers' IOVAs: what a migration saves and
//!   restores mid-ring.
//!
//! `igbvf-ping` (the `ping` function) uses it to talk to the PF's own Linux netdev: the
//! emulated 82576 switches frames between its pools internally (DTXSWC loopback, which the
//! igb PF driver sets with SR-IOV), so an ARP request for the PF's address and ICMP echo
//! requests from the VF reach the PF's network stack, whose replies come back to the VF.

use crate::dma::DmaMem;
use crate::irq::EventFd;
use crate::vfio::{self, Device, DmaMap, Error, Result};
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

// --- VF registers (BAR0) -----------------------------------------------------------------
// 82576 datasheet, "Virtual Function Register Descriptions" (the VF's 16 KiB register
// space); Linux igbvf/regs.h. Queue registers are those of the VF's queue 0.

/// Device Control (regs.h E1000_CTRL). Bit 26, RST: VF software reset, self-clearing.
pub const CTRL: u64 = 0x0000;
/// Device Status, read-only (E1000_STATUS). Bit 1: link up.
pub const STATUS: u64 = 0x0008;
/// Extended Interrupt Mask Set/Read (E1000_EIMS).
pub const EIMS: u64 = 0x1524;
/// Extended Interrupt Mask Clear (E1000_EIMC).
pub const EIMC: u64 = 0x1528;
/// Extended Interrupt Auto Clear (E1000_EIAC): causes cleared when their MSI-X message goes.
pub const EIAC: u64 = 0x152c;
/// Extended Interrupt Auto Mask (E1000_EIAM): causes masked when their MSI-X message goes.
pub const EIAM: u64 = 0x1530;
/// Extended Interrupt Cause Read, read to clear (E1000_EICR).
pub const EICR: u64 = 0x1580;
/// Interrupt Throttle of vector `n` (E1000_EITR(n)); 0: no throttling.
pub const fn eitr(n: u64) -> u64 {
    0x1680 + 4 * n
}
/// Interrupt Vector Allocation of queues 0 and 1 (E1000_IVAR0): byte 0 RX queue 0, byte 1
/// TX queue 0, byte 2 RX queue 1, byte 3 TX queue 1 (igbvf_assign_vector).
pub const IVAR0: u64 = 0x1700;
/// Interrupt Vector Allocation of the mailbox and other causes (E1000_IVAR_MISC).
pub const IVAR_MISC: u64 = 0x1740;
/// Mailbox memory: 16 dwords shared with the PF (E1000_VMBMEM(0)).
pub const VMBMEM: u64 = 0x0800;
/// VF-to-PF mailbox control (E1000_V2PMAILBOX(0)).
pub const V2PMAILBOX: u64 = 0x0c40;
/// Good packets received / transmitted by this VF, read-only counters (E1000_VFGPRC,
/// E1000_VFGPTC).
pub const VFGPRC: u64 = 0x0f10;
pub const VFGPTC: u64 = 0x0f14;
/// RX queue 0: descriptor base low/high, length in bytes, split and replication control,
/// head, tail, descriptor control (E1000_RDBAL(0) ... E1000_RXDCTL(0)).
pub const RDBAL: u64 = 0x2800;
pub const RDBAH: u64 = 0x2804;
pub const RDLEN: u64 = 0x2808;
pub const SRRCTL: u64 = 0x280c;
pub const RDH: u64 = 0x2810;
pub const RDT: u64 = 0x2818;
pub const RXDCTL: u64 = 0x2828;
/// TX queue 0: descriptor base low/high, length in bytes, head, DCA control, tail,
/// descriptor control (E1000_TDBAL(0) ... E1000_TXDCTL(0)).
pub const TDBAL: u64 = 0x3800;
pub const TDBAH: u64 = 0x3804;
pub const TDLEN: u64 = 0x3808;
pub const TDH: u64 = 0x3810;
pub const DCA_TXCTRL: u64 = 0x3814;
pub const TDT: u64 = 0x3818;
pub const TXDCTL: u64 = 0x3828;

// --- Register bits (defines.h) ----------------------------------------------------------

/// CTRL: VF reset (E1000_CTRL_RST).
pub const CTRL_RST: u32 = 1 << 26;
/// STATUS: link up (E1000_STATUS_LU).
pub const STATUS_LU: u32 = 1 << 1;
/// IVAR entry valid (E1000_IVAR_VALID); the low bits are the MSI-X vector.
pub const IVAR_VALID: u32 = 0x80;
/// SRRCTL: buffer size in KiB (BSIZEPKT, E1000_SRRCTL_BSIZEPKT_SHIFT: bytes >> 10),
/// advanced one-buffer descriptors (E1000_SRRCTL_DESCTYPE_ADV_ONEBUF), drop when no
/// descriptor is free instead of blocking the pool (E1000_SRRCTL_DROP_EN).
pub const SRRCTL_BSIZEPKT_SHIFT: u32 = 10;
pub const SRRCTL_DESCTYPE_ADV_ONEBUF: u32 = 0x0200_0000;
pub const SRRCTL_DROP_EN: u32 = 0x8000_0000;
/// RXDCTL/TXDCTL: queue enable (E1000_RXDCTL_QUEUE_ENABLE, E1000_TXDCTL_QUEUE_ENABLE).
pub const QUEUE_ENABLE: u32 = 1 << 25;
/// RXDCTL prefetch, host and write-back thresholds, as igbvf.h (IGBVF_RX_PTHRESH 16,
/// IGBVF_RX_HTHRESH 8, IGBVF_RX_WTHRESH 1).
pub const RXDCTL_THRESHOLDS: u32 = 16 | (8 << 8) | (1 << 16);
/// DCA_TXCTRL: relaxed ordering of descriptor write-backs (E1000_DCA_TXCTRL_TX_WB_RO_EN),
/// which igbvf_configure_tx turns off.
pub const DCA_TXCTRL_TX_WB_RO_EN: u32 = 1 << 11;

// --- Mailbox (mbx.h; 82576 datasheet, "PF-VF Mailbox") ------------------------------------

/// V2PMAILBOX bits: the VF sends a request (REQ), acknowledges the PF's message (ACK),
/// takes the buffer (VFU); the PF holds it (PFU), wrote a message (PFSTS), acknowledged
/// ours (PFACK), is resetting (RSTI), has reset (RSTD). PFSTS, PFACK and RSTD clear when
/// read (E1000_V2PMAILBOX_R2C_BITS): a read must remember them until they are consumed.
pub const MBX_REQ: u32 = 0x01;
pub const MBX_ACK: u32 = 0x02;
pub const MBX_VFU: u32 = 0x04;
pub const MBX_PFU: u32 = 0x08;
pub const MBX_PFSTS: u32 = 0x10;
pub const MBX_PFACK: u32 = 0x20;
pub const MBX_RSTI: u32 = 0x40;
pub const MBX_RSTD: u32 = 0x80;
pub const MBX_R2C_BITS: u32 = MBX_PFSTS | MBX_PFACK | MBX_RSTD;
/// Mailbox memory size in dwords (E1000_VFMAILBOX_SIZE).
pub const MBX_SIZE: usize = 16;
/// Requests, word 0 bits 15:0 (E1000_VF_*; SET_VLAN, 0x04, is not used here); bits 23:16 carry extra information
/// (E1000_VT_MSGINFO_SHIFT); the PF's answer repeats the request with ACK or NACK, and CTS
/// once the VF is clear to send (after a VF_RESET) (E1000_VT_MSGTYPE_*).
pub const VF_RESET: u32 = 0x01;
pub const VF_SET_MAC_ADDR: u32 = 0x02;
pub const VF_SET_MULTICAST: u32 = 0x03;
pub const VF_SET_LPE: u32 = 0x05;
pub const MSGINFO_SHIFT: u32 = 16;
pub const MSGTYPE_ACK: u32 = 0x8000_0000;
pub const MSGTYPE_NACK: u32 = 0x4000_0000;
pub const MSGTYPE_CTS: u32 = 0x2000_0000;
/// A message the PF sends on its own (link changes, PF reset): igb_ping_all_vfs.
pub const PF_CONTROL_MSG: u32 = 0x0100;

// --- Descriptors (vf.h: union e1000_adv_rx_desc, union e1000_adv_tx_desc) ------------------

/// Both kinds are 16 bytes.
pub const DESC_LEN: usize = 16;
/// RX write-back: status and errors dword at byte 8, length at 12. DD: descriptor done, EOP:
/// end of packet (E1000_RXD_STAT_*); the frame errors (E1000_RXDEXT_ERR_FRAME_ERR_MASK: CE,
/// SE, SEQ, CXE, RXE).
pub const RXD_STAT_DD: u32 = 0x01;
pub const RXD_STAT_EOP: u32 = 0x02;
pub const RXD_ERR_FRAME: u32 = 0x0100_0000 | 0x0200_0000 | 0x0400_0000 | 0x1000_0000 | 0x8000_0000;
/// TX advanced data descriptor, cmd_type_len (dword at byte 8): data descriptor type,
/// end of packet, insert FCS, report status (write DD back), descriptor extension; the
/// length in bits 15:0 (E1000_ADVTXD_*). olinfo_status (byte 12): the packet's length at
/// bit 14 (E1000_ADVTXD_PAYLEN_SHIFT). Write-back: DD in the status dword at byte 12.
pub const TXD_DTYP_DATA: u32 = 0x0030_0000;
pub const TXD_DCMD_EOP: u32 = 0x0100_0000;
pub const TXD_DCMD_IFCS: u32 = 0x0200_0000;
pub const TXD_DCMD_RS: u32 = 0x0800_0000;
pub const TXD_DCMD_DEXT: u32 = 0x2000_0000;
pub const TXD_PAYLEN_SHIFT: u32 = 14;
pub const TXD_STAT_DD: u32 = 0x01;

// --- This driver's choices ---------------------------------------------------------------

/// Descriptors per ring: a multiple of 8 (REQ_RX/TX_DESCRIPTOR_MULTIPLE), a ring of a
/// multiple of 128 bytes. Small, so that a short exchange wraps both rings.
pub const RX_DESCS: u32 = 32;
pub const TX_DESCS: u32 = 32;
/// One buffer per descriptor, the size of SRRCTL.BSIZEPKT: a whole frame fits.
pub const BUF_LEN: usize = 2048;
/// MSI-X vectors: the VF has three. TX queue 0, RX queue 0, mailbox and other causes: the
/// assignment of igbvf_configure_msix. Not only for the likeness: QEMU's igb ORs a VF's
/// IVAR0 entries into the PF's table (igb_core.c igb_set_vtivar), which only a reset of the
/// PF clears, so a driver that assigns other vectors than the VF's previous driver (Linux's
/// igbvf) may get the OR of both assignments. (QEMU also raises a PF mailbox message to the
/// VF on the vector whose *bit* is IVAR_MISC's vector number, igb_core.c
/// mailbox_interrupt_to_vf: vector 1 for 2, so there a PF message can come as an RX
/// interrupt; `poll_rx` takes one without a frame in its stride.)
pub const VECTORS: u32 = 3;
pub const TX_VECTOR: u32 = 0;
pub const RX_VECTOR: u32 = 1;
pub const OTHER_VECTOR: u32 = 2;
/// The DMA memory's layout from its base IOVA: each ring in a page of its own, then the RX
/// and the TX buffers.
const RX_RING_OFF: usize = 0;
const TX_RING_OFF: usize = 0x1000;
const RX_BUF_OFF: usize = 0x2000;
const TX_BUF_OFF: usize = RX_BUF_OFF + RX_DESCS as usize * BUF_LEN;
const DMA_LEN: usize = TX_BUF_OFF + TX_DESCS as usize * BUF_LEN;
/// Where `ping` places it (the NVMe commands use 1-3 MiB).
pub const IOVA_BASE: u64 = 0x100_0000;
/// A mailbox answer: Linux waits 2000 x 500 us (E1000_VF_MBX_INIT_TIMEOUT/DELAY); the PF's
/// handler runs in a TCG guest with a debug kernel here, so allow more.
const MBX_TIMEOUT: Duration = Duration::from_secs(5);
/// The end of a PF reset (RSTI): Linux allows 200 x 5 us (E1000_VF_INIT_TIMEOUT).
const RESET_TIMEOUT: Duration = Duration::from_secs(2);

fn err(what: String, errno: i32) -> Error {
    Error { what, err: io::Error::from_raw_os_error(errno) }
}

fn timeout(what: String) -> Error {
    err(what, libc::ETIMEDOUT)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// The driver's side of one descriptor ring: slots `next_to_clean..next_to_use` (modulo
/// `count`) belong to the hardware, the others to the driver; one slot always stays
/// unused, so that head == tail means "nothing for the hardware". Slot `i` always uses
/// buffer `i`.
#[derive(Clone, Copy, Debug)]
pub struct Ring {
    pub count: u32,
    pub next_to_use: u32,
    pub next_to_clean: u32,
    /// Offsets of the descriptors and the first buffer in the DMA memory.
    desc_off: usize,
    buf_off: usize,
}

impl Ring {
    fn new(count: u32, desc_off: usize, buf_off: usize) -> Self {
        Self { count, next_to_use: 0, next_to_clean: 0, desc_off, buf_off }
    }

    /// Slots the driver can hand to the hardware (igbvf_desc_unused).
    pub fn unused(&self) -> u32 {
        (self.next_to_clean + self.count - self.next_to_use - 1) % self.count
    }

    fn next(&self, i: u32) -> u32 {
        (i + 1) % self.count
    }

    fn desc(&self, i: u32) -> usize {
        self.desc_off + i as usize * DESC_LEN
    }

    fn buf(&self, i: u32) -> usize {
        self.buf_off + i as usize * BUF_LEN
    }
}

/// What the driver counted.
#[derive(Default, Debug)]
pub struct Counters {
    /// Frames given to the TX ring, and their descriptors the hardware wrote back (DD).
    pub tx_frames: u64,
    pub tx_done: u64,
    /// Frames taken from the RX ring; of those, the ones found after waiting for the RX
    /// interrupt in vain (the interrupt never came); descriptors with errors or without EOP.
    pub rx_frames: u64,
    pub rx_without_irq: u64,
    pub rx_errors: u64,
    /// Interrupts signalled on each vector's eventfd (the counters' sums).
    pub rx_irqs: u64,
    pub tx_irqs: u64,
    pub other_irqs: u64,
    /// Mailbox messages sent and received; PF control messages (not answers) among them.
    pub mbx_sent: u64,
    pub mbx_received: u64,
    pub mbx_pf_control: u64,
}

/// The rings as the device and the driver have them: enough to continue them elsewhere.
#[derive(Debug)]
pub struct RingState {
    /// RDH, RDT, TDH, TDT read from the device.
    pub rx_head: u32,
    pub rx_tail: u32,
    pub tx_head: u32,
    pub tx_tail: u32,
    pub rx: Ring,
    pub tx: Ring,
    pub rx_ring_iova: u64,
    pub tx_ring_iova: u64,
    /// The RX buffers owned by the hardware: (slot, IOVA). The device's write-back
    /// overwrites a descriptor's buffer address, so this is the only record of them.
    pub rx_posted: Vec<(u32, u64)>,
}

/// The PF's answer to VF_RESET: the VF's permanent MAC address, or none (NACK).
pub enum ResetReply {
    Ack([u8; 6]),
    Nack,
}

/// The multicast hash of `mac` the PF's filter table uses (e1000_hash_mc_addr_vf: 128
/// registers, a 12-bit hash of the last two bytes).
pub fn multicast_hash(mac: &[u8; 6]) -> u16 {
    ((u16::from(mac[4]) >> 4) | (u16::from(mac[5]) << 4)) & 0xfff
}

/// An 82576 VF opened through VFIO.
pub struct IgbVf<'a> {
    dev: &'a Device,
    /// BAR0's offset in the device fd (its region info).
    bar0: u64,
    mem: DmaMem,
    /// The IOVA of the DMA memory's first byte.
    pub iova: u64,
    pub rx: Ring,
    pub tx: Ring,
    /// The read-to-clear mailbox bits read but not consumed yet (e1000_read_v2p_mailbox).
    mbx_r2c: u32,
    /// One eventfd per MSI-X vector, once enabled.
    vectors: Vec<EventFd>,
    pub counters: Counters,
}

impl<'a> IgbVf<'a> {
    /// Maps the rings and buffers at `iova` through `dma` and turns bus mastering on; the
    /// device itself is not touched.
    pub fn new(dev: &'a Device, dma: &dyn DmaMap, iova: u64) -> Result<Self> {
        let bar0 = dev.region_info(0)?;
        if bar0.size < 0x4000 {
            return Err(err(format!("BAR0 is {:#x} bytes, an 82576 VF's is 16 KiB", bar0.size), libc::ENODEV));
        }
        let mem = DmaMem::new(DMA_LEN)?;
        dma.map_dma(mem.va(), DMA_LEN as u64, iova)?;
        // Bus mastering (and memory decoding, which a VF's COMMAND register does not have:
        // the library virtualizes the bit, as vfio-pci).
        let cfg = vfio::VFIO_PCI_CONFIG_REGION_INDEX;
        let cmd = dev.read_reg(cfg, 0x4, 2)?;
        dev.write_reg(cfg, 0x4, 2, cmd | 0x6)?;
        Ok(Self {
            dev,
            bar0: bar0.offset,
            mem,
            iova,
            rx: Ring::new(RX_DESCS, RX_RING_OFF, RX_BUF_OFF),
            tx: Ring::new(TX_DESCS, TX_RING_OFF, TX_BUF_OFF),
            mbx_r2c: 0,
            vectors: Vec::new(),
            counters: Counters::default(),
        })
    }

    /// Reads the register at `reg` of BAR0.
    pub fn read_reg(&self, reg: u64) -> Result<u32> {
        let mut b = [0u8; 4];
        self.dev
            .file
            .read_exact_at(&mut b, self.bar0 + reg)
            .map_err(|err| Error { what: format!("read BAR0 {reg:#06x}"), err })?;
        Ok(u32::from_le_bytes(b))
    }

    /// Writes the register at `reg` of BAR0.
    pub fn write_reg(&self, reg: u64, v: u32) -> Result<()> {
        self.dev
            .file
            .write_all_at(&v.to_le_bytes(), self.bar0 + reg)
            .map_err(|err| Error { what: format!("write {v:#x} to BAR0 {reg:#06x}"), err })
    }

    /// The IOVA of byte `off` of the DMA memory.
    fn iova_of(&self, off: usize) -> u64 {
        self.iova + off as u64
    }

    // --- Mailbox (mbx.c) --------------------------------------------------------------

    /// V2PMAILBOX with the read-to-clear bits seen before and not consumed yet.
    fn mbx_read(&mut self) -> Result<u32> {
        let v = self.read_reg(V2PMAILBOX)?;
        self.mbx_r2c |= v & MBX_R2C_BITS;
        Ok(v | self.mbx_r2c)
    }

    /// Whether one of `bits` is set, consuming them (e1000_check_for_bit_vf).
    fn mbx_check(&mut self, bits: u32) -> Result<bool> {
        let v = self.mbx_read()?;
        self.mbx_r2c &= !bits;
        Ok(v & bits != 0)
    }

    /// Waits until one of `bits` is set, consuming them.
    fn mbx_wait(&mut self, bits: u32, what: &str) -> Result<()> {
        let end = Instant::now() + MBX_TIMEOUT;
        while !self.mbx_check(bits)? {
            if Instant::now() > end {
                let v = self.read_reg(V2PMAILBOX)?;
                return Err(timeout(format!(
                    "mailbox: no {what} from the PF in {} s (V2PMAILBOX {v:#x}): is the igb PF driver bound and up?",
                    MBX_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Takes the mailbox buffer for the VF (VFU), which the hardware grants only while the
    /// PF does not hold it (PFU) (e1000_obtain_mbx_lock_vf).
    fn mbx_lock(&mut self) -> Result<()> {
        for _ in 0..=10 {
            self.write_reg(V2PMAILBOX, MBX_VFU)?;
            if self.mbx_read()? & MBX_VFU != 0 {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let v = self.read_reg(V2PMAILBOX)?;
        let held = if v & MBX_PFU != 0 { ": the PF holds it (PFU)" } else { "" };
        Err(err(format!("mailbox: the VF could not take the buffer (VFU) in 10 ms{held}: V2PMAILBOX {v:#x}"), libc::EBUSY))
    }

    /// Sends `msg` and waits for the PF's acknowledgement (e1000_write_posted_mbx).
    fn mbx_write_posted(&mut self, msg: &[u32]) -> Result<()> {
        assert!(msg.len() <= MBX_SIZE);
        self.mbx_lock()?;
        // A stale acknowledgement or message would be taken for the answer to this one.
        self.mbx_check(MBX_PFACK)?;
        self.mbx_check(MBX_PFSTS)?;
        for (i, w) in msg.iter().enumerate() {
            self.write_reg(VMBMEM + 4 * i as u64, *w)?;
        }
        // REQ without VFU: releases the buffer and interrupts the PF.
        self.write_reg(V2PMAILBOX, MBX_REQ)?;
        self.counters.mbx_sent += 1;
        self.mbx_wait(MBX_PFACK, &format!("acknowledgement (PFACK) of message {:#x}", msg[0]))
    }

    /// Waits for the PF's message and reads its first `n` dwords (e1000_read_posted_mbx).
    fn mbx_read_posted(&mut self, n: usize, what: &str) -> Result<Vec<u32>> {
        self.mbx_wait(MBX_PFSTS, what)?;
        self.mbx_lock()?;
        let msg = (0..n).map(|i| self.read_reg(VMBMEM + 4 * i as u64)).collect::<Result<Vec<_>>>()?;
        // ACK without VFU: acknowledges the message and releases the buffer.
        self.write_reg(V2PMAILBOX, MBX_ACK)?;
        self.counters.mbx_received += 1;
        Ok(msg)
    }

    /// Sends request `msg` and returns the PF's answer (`n` dwords) and whether it was an
    /// ACK (`false`: NACK). A PF control message that comes first is acknowledged and
    /// skipped.
    pub fn mbx_request(&mut self, msg: &[u32], n: usize) -> Result<(Vec<u32>, bool)> {
        self.mbx_write_posted(msg)?;
        let id = msg[0] & 0xffff;
        for _ in 0..4 {
            let what = format!("answer (PFSTS) to message {:#x}", msg[0]);
            let reply = self.mbx_read_posted(n, &what)?;
            let w = reply[0] & !MSGTYPE_CTS;
            if w & 0xffff == PF_CONTROL_MSG && w & (MSGTYPE_ACK | MSGTYPE_NACK) == 0 {
                self.counters.mbx_pf_control += 1;
                continue;
            }
            if w & 0xffff != id || w & (MSGTYPE_ACK | MSGTYPE_NACK) == 0 {
                return Err(err(format!("mailbox: answer {:#x} to message {:#x}", reply[0], msg[0]), libc::EPROTO));
            }
            return Ok((reply, w & MSGTYPE_ACK != 0));
        }
        Err(err(format!("mailbox: only PF control messages, no answer to message {:#x}", msg[0]), libc::EPROTO))
    }

    // --- Reset and PF-held state (vf.c) ------------------------------------------------

    /// VF reset (e1000_reset_hw_vf): CTRL.RST, which stops the queues and makes the PF
    /// forget the VF's filters (the PF sees a VF function-level reset); waits until RST
    /// reads back clear and the PF is not resetting itself (RSTI clear; RSTD, "reset
    /// done", read once and cleared); then VF_RESET through the mailbox, which makes the
    /// PF enable the VF's queues (VFRE/VFTE) and answer with its MAC address or NACK.
    pub fn reset(&mut self) -> Result<ResetReply> {
        let ctrl = self.read_reg(CTRL)?;
        self.write_reg(CTRL, ctrl | CTRL_RST)?;
        let end = Instant::now() + RESET_TIMEOUT;
        while self.read_reg(CTRL)? & CTRL_RST != 0 {
            if Instant::now() > end {
                return Err(timeout(format!("CTRL.RST still set {} s after the VF reset", RESET_TIMEOUT.as_secs())));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        loop {
            let v = self.mbx_read()?;
            self.mbx_r2c &= !(MBX_RSTD | MBX_RSTI);
            if v & (MBX_RSTD | MBX_RSTI) == 0 {
                break;
            }
            if Instant::now() > end {
                return Err(timeout(format!("the PF is still resetting (V2PMAILBOX {v:#x}: RSTI) after {} s", RESET_TIMEOUT.as_secs())));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        // The queues are stopped: the rings start over.
        self.rx = Ring::new(RX_DESCS, RX_RING_OFF, RX_BUF_OFF);
        self.tx = Ring::new(TX_DESCS, TX_RING_OFF, TX_BUF_OFF);
        let (reply, ack) = self.mbx_request(&[VF_RESET], 3)?;
        if !ack {
            return Ok(ResetReply::Nack);
        }
        let b = [reply[1].to_le_bytes(), reply[2].to_le_bytes()];
        Ok(ResetReply::Ack([b[0][0], b[0][1], b[0][2], b[0][3], b[1][0], b[1][1]]))
    }

    /// SET_MAC_ADDR: the PF's filter for `mac` delivers to this VF (e1000_rar_set_vf). NACK
    /// if the PF set the VF's address itself or `mac` is not a unicast address.
    pub fn set_mac(&mut self, mac: &[u8; 6]) -> Result<bool> {
        let mut m = [0u8; 8];
        m[..6].copy_from_slice(mac);
        let msg = [VF_SET_MAC_ADDR, u32::from_le_bytes([m[0], m[1], m[2], m[3]]), u32::from_le_bytes([m[4], m[5], 0, 0])];
        Ok(self.mbx_request(&msg, 1)?.1)
    }

    /// SET_LPE: the largest frame the VF's pool accepts (e1000_rlpml_set_vf).
    pub fn set_lpe(&mut self, max_frame: u32) -> Result<bool> {
        Ok(self.mbx_request(&[VF_SET_LPE, max_frame], 1)?.1)
    }

    /// SET_MULTICAST: the multicast addresses the VF's pool receives, at most 30
    /// (e1000_update_mc_addr_list_vf).
    pub fn set_multicast(&mut self, macs: &[[u8; 6]]) -> Result<bool> {
        let n = macs.len().min(30);
        let mut msg = [0u32; MBX_SIZE];
        msg[0] = VF_SET_MULTICAST | (n as u32) << MSGINFO_SHIFT;
        for (i, mac) in macs[..n].iter().enumerate() {
            msg[1 + i / 2] |= u32::from(multicast_hash(mac)) << (16 * (i % 2));
        }
        Ok(self.mbx_request(&msg, 1)?.1)
    }

    /// Whether the link is up (STATUS.LU, the PF's port).
    pub fn link_up(&self) -> Result<bool> {
        Ok(self.read_reg(STATUS)? & STATUS_LU != 0)
    }

    // --- Rings (netdev.c) -------------------------------------------------------------

    /// Programs both rings empty and hands the RX buffers to the hardware, in the order of
    /// igbvf_configure_tx and igbvf_configure_rx (migration notes §3.4).
    pub fn init_rings(&mut self) -> Result<()> {
        self.configure_tx(0, 0)?;
        self.configure_rx(0, 0)?;
        self.post_rx()
    }

    /// TX queue 0 with head `head` and tail `tail`: disable, base and length, head and tail,
    /// write-backs in order, enable.
    fn configure_tx(&mut self, head: u32, tail: u32) -> Result<()> {
        let txdctl = self.read_reg(TXDCTL)?;
        self.write_reg(TXDCTL, txdctl & !QUEUE_ENABLE)?;
        self.read_reg(STATUS)?; // flush (e1e_flush)
        std::thread::sleep(Duration::from_millis(10));
        let base = self.iova_of(self.tx.desc_off);
        self.write_reg(TDLEN, self.tx.count * DESC_LEN as u32)?;
        self.write_reg(TDBAL, base as u32)?;
        self.write_reg(TDBAH, (base >> 32) as u32)?;
        self.write_reg(TDH, head)?;
        self.write_reg(TDT, tail)?;
        let dca = self.read_reg(DCA_TXCTRL)?;
        self.write_reg(DCA_TXCTRL, dca & !DCA_TXCTRL_TX_WB_RO_EN)?;
        self.write_reg(TXDCTL, txdctl | QUEUE_ENABLE)?;
        self.tx.next_to_use = tail;
        self.tx.next_to_clean = head;
        Ok(())
    }

    /// RX queue 0 with head `head` and tail `tail`: disable, base and length, head and tail,
    /// buffer size and descriptor type, enable with igbvf's thresholds.
    fn configure_rx(&mut self, head: u32, tail: u32) -> Result<()> {
        let rxdctl = self.read_reg(RXDCTL)?;
        self.write_reg(RXDCTL, rxdctl & !QUEUE_ENABLE)?;
        self.read_reg(STATUS)?;
        std::thread::sleep(Duration::from_millis(10));
        let base = self.iova_of(self.rx.desc_off);
        self.write_reg(RDBAL, base as u32)?;
        self.write_reg(RDBAH, (base >> 32) as u32)?;
        self.write_reg(RDLEN, self.rx.count * DESC_LEN as u32)?;
        self.write_reg(RDH, head)?;
        self.write_reg(RDT, tail)?;
        let srrctl = SRRCTL_DROP_EN | SRRCTL_DESCTYPE_ADV_ONEBUF | (BUF_LEN as u32 >> SRRCTL_BSIZEPKT_SHIFT);
        self.write_reg(SRRCTL, srrctl)?;
        self.write_reg(RXDCTL, (rxdctl & 0xfff0_0000) | QUEUE_ENABLE | RXDCTL_THRESHOLDS)?;
        self.rx.next_to_use = tail;
        self.rx.next_to_clean = head;
        Ok(())
    }

    /// Hands every free RX slot's buffer to the hardware and moves the tail past them
    /// (igbvf_alloc_rx_buffers; the tail points one past the last posted descriptor).
    pub fn post_rx(&mut self) -> Result<()> {
        let n = self.rx.unused();
        if n == 0 {
            return Ok(());
        }
        for _ in 0..n {
            let i = self.rx.next_to_use;
            let d = self.rx.desc(i);
            // Read format: packet buffer address, header buffer address (none: one buffer).
            // This also clears the previous write-back's DD.
            self.mem.write_u64(d, self.iova_of(self.rx.buf(i)));
            self.mem.write_u64(d + 8, 0);
            self.rx.next_to_use = self.rx.next(i);
        }
        // The descriptors are in memory before the device hears of them.
        fence(Ordering::SeqCst);
        self.write_reg(RDT, self.rx.next_to_use)
    }

    /// Counts the TX descriptors the hardware wrote back (DD) since the last call.
    pub fn clean_tx(&mut self) -> u32 {
        let mut n = 0;
        while self.tx.next_to_clean != self.tx.next_to_use {
            let d = self.tx.desc(self.tx.next_to_clean);
            if self.mem.read_u32(d + 12) & TXD_STAT_DD == 0 {
                break;
            }
            self.mem.write_u64(d, 0);
            self.mem.write_u64(d + 8, 0);
            self.tx.next_to_clean = self.tx.next(self.tx.next_to_clean);
            n += 1;
        }
        self.counters.tx_done += u64::from(n);
        n
    }

    /// Sends one frame (padded to the 60-byte minimum): one advanced data descriptor with
    /// EOP, IFCS and RS, then the tail. Waits up to a second for a free slot.
    pub fn send(&mut self, frame: &[u8]) -> Result<()> {
        if frame.len() > BUF_LEN - 4 {
            return Err(err(format!("a {}-byte frame does not fit a {BUF_LEN}-byte buffer", frame.len()), libc::EMSGSIZE));
        }
        let end = Instant::now() + Duration::from_secs(1);
        self.clean_tx();
        while self.tx.unused() == 0 {
            if Instant::now() > end {
                let (h, t) = (self.read_reg(TDH)?, self.read_reg(TDT)?);
                return Err(timeout(format!("TX ring full for 1 s: TDH {h} TDT {t}, next_to_clean {}", self.tx.next_to_clean)));
            }
            std::thread::sleep(Duration::from_micros(200));
            self.clean_tx();
        }
        let len = frame.len().max(60);
        let i = self.tx.next_to_use;
        let b = self.tx.buf(i);
        self.mem.write(b, frame);
        self.mem.write(b + frame.len(), &vec![0; len - frame.len()]);
        let d = self.tx.desc(i);
        let cmd = TXD_DTYP_DATA | TXD_DCMD_DEXT | TXD_DCMD_EOP | TXD_DCMD_IFCS | TXD_DCMD_RS | len as u32;
        self.mem.write_u64(d, self.iova_of(b));
        self.mem.write_u32(d + 8, cmd);
        self.mem.write_u32(d + 12, (len as u32) << TXD_PAYLEN_SHIFT);
        self.tx.next_to_use = self.tx.next(i);
        fence(Ordering::SeqCst);
        self.write_reg(TDT, self.tx.next_to_use)?;
        self.counters.tx_frames += 1;
        // The emulated device transmits within the tail write; real hardware later.
        self.clean_tx();
        Ok(())
    }

    /// Takes the received frames off the RX ring (igbvf_clean_rx_irq) and posts their
    /// buffers again.
    fn clean_rx(&mut self) -> Result<Vec<Vec<u8>>> {
        let mut frames = Vec::new();
        loop {
            let i = self.rx.next_to_clean;
            if i == self.rx.next_to_use {
                break;
            }
            let d = self.rx.desc(i);
            let status = self.mem.read_u32(d + 8);
            if status & RXD_STAT_DD == 0 {
                break;
            }
            // The rest of the write-back, and the buffer, only after DD.
            fence(Ordering::Acquire);
            let len = (self.mem.read_u64(d + 8) >> 32) as usize & 0xffff;
            if status & RXD_STAT_EOP == 0 || status & RXD_ERR_FRAME != 0 || len > BUF_LEN {
                self.counters.rx_errors += 1;
            } else {
                frames.push(self.mem.read(self.rx.buf(i), len));
            }
            self.rx.next_to_clean = self.rx.next(i);
        }
        self.counters.rx_frames += frames.len() as u64;
        self.post_rx()?;
        Ok(frames)
    }

    /// Whether the RX ring's next descriptor is done (DD).
    fn rx_pending(&self) -> bool {
        self.rx.next_to_clean != self.rx.next_to_use
            && self.mem.read_u32(self.rx.desc(self.rx.next_to_clean) + 8) & RXD_STAT_DD != 0
    }

    /// Waits up to `wait` for received frames, interrupt-driven: sleeps on the RX vector's
    /// eventfd and looks at the ring when it is signalled, then re-enables the vector
    /// (EIMS, as igbvf_poll after NAPI). Frames found without an interrupt (checked every
    /// second, with a grace period for an interrupt on its way) are counted in
    /// `rx_without_irq`. Returns no frames when none came in time.
    pub fn poll_rx(&mut self, wait: Duration) -> Result<Vec<Vec<u8>>> {
        if self.vectors.is_empty() {
            return Err(err("poll_rx before enable_msix".into(), libc::EINVAL));
        }
        let end = Instant::now() + wait;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let n = self.vectors[RX_VECTOR as usize].wait(left.min(Duration::from_secs(1)))?;
            if n > 0 {
                self.counters.rx_irqs += n;
                let frames = self.clean_rx()?;
                self.write_reg(EIMS, 1 << RX_VECTOR)?;
                if !frames.is_empty() {
                    return Ok(frames);
                }
            } else if self.rx_pending() {
                // A frame, and no interrupt for it yet: give the interrupt time to come.
                let n = self.vectors[RX_VECTOR as usize].wait(Duration::from_millis(500))?;
                self.counters.rx_irqs += n;
                let frames = self.clean_rx()?;
                if n == 0 {
                    self.counters.rx_without_irq += frames.len() as u64;
                }
                self.write_reg(EIMS, 1 << RX_VECTOR)?;
                return Ok(frames);
            }
            if Instant::now() >= end {
                return Ok(Vec::new());
            }
        }
    }

    /// Adds the interrupts signalled on the TX and other vectors since the last call to the
    /// counters (the RX vector's are counted by `poll_rx`).
    pub fn collect_irqs(&mut self) -> Result<()> {
        if let Some(v) = self.vectors.get(TX_VECTOR as usize) {
            self.counters.tx_irqs += v.take()?;
        }
        if let Some(v) = self.vectors.get(OTHER_VECTOR as usize) {
            self.counters.other_irqs += v.take()?;
        }
        Ok(())
    }

    // --- Interrupts (netdev.c: igbvf_configure_msix, igbvf_irq_enable) -------------------

    /// MSI-X through VFIO: every vector with an eventfd of its own (VFIO_DEVICE_SET_IRQS;
    /// the table cannot grow once enabled, so all at once).
    pub fn enable_msix(&mut self) -> Result<()> {
        let index = vfio::VFIO_PCI_MSIX_IRQ_INDEX;
        let count = self.dev.irq_info(index)?.count;
        if count < VECTORS {
            return Err(err(format!("{count} MSI-X vectors, an 82576 VF has {VECTORS}"), libc::ENODEV));
        }
        let efds = (0..VECTORS).map(|_| EventFd::new()).collect::<Result<Vec<_>>>()?;
        let fds = crate::irq::fds(&efds.iter().map(EventFd::raw).collect::<Vec<_>>());
        let flags = vfio::VFIO_IRQ_SET_ACTION_TRIGGER | vfio::VFIO_IRQ_SET_DATA_EVENTFD;
        self.dev.set_irqs(flags, index, 0, VECTORS, &fds)?;
        self.vectors = efds;
        Ok(())
    }

    /// Routes the queues and the other causes to their vectors and unmasks them, with
    /// auto-clear and auto-mask, as igbvf_configure_msix and igbvf_irq_enable (after
    /// clearing what is pending: the read of EICR in igbvf_up).
    pub fn enable_interrupts(&mut self) -> Result<()> {
        let ivar = self.read_reg(IVAR0)? & 0xffff_0000;
        self.write_reg(IVAR0, ivar | (RX_VECTOR | IVAR_VALID) | ((TX_VECTOR | IVAR_VALID) << 8))?;
        self.write_reg(IVAR_MISC, OTHER_VECTOR | IVAR_VALID)?;
        for v in 0..VECTORS {
            self.write_reg(eitr(v.into()), 0)?;
        }
        self.read_reg(EICR)?;
        let mask = (1 << VECTORS) - 1;
        self.write_reg(EIAC, mask)?;
        self.write_reg(EIAM, mask)?;
        self.write_reg(EIMS, mask)
    }

    /// The rings' state: the device's head and tail registers and the driver's indexes.
    pub fn ring_state(&self) -> Result<RingState> {
        let mut rx_posted = Vec::new();
        let mut i = self.rx.next_to_clean;
        while i != self.rx.next_to_use {
            rx_posted.push((i, self.iova_of(self.rx.buf(i))));
            i = self.rx.next(i);
        }
        Ok(RingState {
            rx_head: self.read_reg(RDH)?,
            rx_tail: self.read_reg(RDT)?,
            tx_head: self.read_reg(TDH)?,
            tx_tail: self.read_reg(TDT)?,
            rx: self.rx,
            tx: self.tx,
            rx_ring_iova: self.iova_of(self.rx.desc_off),
            tx_ring_iova: self.iova_of(self.tx.desc_off),
            rx_posted,
        })
    }

    /// Masks the interrupts, stops both queues and disables MSI-X (igbvf_down).
    pub fn shutdown(&mut self) -> Result<()> {
        self.write_reg(EIMC, !0)?;
        self.write_reg(EIAC, 0)?;
        let rxdctl = self.read_reg(RXDCTL)?;
        self.write_reg(RXDCTL, rxdctl & !QUEUE_ENABLE)?;
        let txdctl = self.read_reg(TXDCTL)?;
        self.write_reg(TXDCTL, txdctl & !QUEUE_ENABLE)?;
        if !self.vectors.is_empty() {
            let flags = vfio::VFIO_IRQ_SET_ACTION_TRIGGER | vfio::VFIO_IRQ_SET_DATA_NONE;
            self.dev.set_irqs(flags, vfio::VFIO_PCI_MSIX_IRQ_INDEX, 0, 0, &[])?;
            self.vectors.clear();
        }
        Ok(())
    }
}

// --- Frames: Ethernet, ARP, IPv4, ICMP ---------------------------------------------------

const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_HLEN: usize = 14;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
const IPPROTO_ICMP: u8 = 1;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO: u8 = 8;
const BROADCAST: [u8; 6] = [0xff; 6];
/// The ICMP identifier of `ping`'s echo requests ("MP").
pub const ICMP_ID: u16 = 0x4d50;
/// The MAC address `ping` gives the VF when the PF has none for it: locally administered,
/// unicast ("MPW").
pub const OWN_MAC: [u8; 6] = [0x02, 0x4d, 0x50, 0x57, 0x00, 0x01];
/// The largest frame with its FCS (MTU 1500), for SET_LPE.
pub const MAX_FRAME: u32 = 1518;
/// The largest ICMP payload in a 1500-byte IP packet.
const MAX_PAYLOAD: usize = 1500 - 20 - 8;

/// The Internet checksum (RFC 1071) of `data`: 0 over data that carries its checksum.
pub fn inet_csum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn eth_header(dst: &[u8; 6], src: &[u8; 6], proto: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(BUF_LEN);
    f.extend_from_slice(dst);
    f.extend_from_slice(src);
    f.extend_from_slice(&proto.to_be_bytes());
    f
}

/// An ARP frame (RFC 826, Ethernet/IPv4): `op` from `sha`/`spa` to `tha`/`tpa`, sent to
/// `dst`.
pub fn arp_frame(dst: &[u8; 6], op: u16, sha: &[u8; 6], spa: Ipv4Addr, tha: &[u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = eth_header(dst, sha, ETH_P_ARP);
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(tha);
    f.extend_from_slice(&tpa.octets());
    f
}

/// The payload of echo request `seq`: its sequence number and length, then a pattern of
/// both; 56 to 1472 bytes, a different length for consecutive sequence numbers.
pub fn echo_payload(seq: u16) -> Vec<u8> {
    let len = 56 + (usize::from(seq) * 389) % (MAX_PAYLOAD - 56 + 1);
    let mut p = Vec::with_capacity(len);
    p.extend_from_slice(&u32::from(seq).to_be_bytes());
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend((8..len).map(|i| (i as u32 * 7 + u32::from(seq) * 13 + 0x5a) as u8));
    p
}

/// An Ethernet frame with an IPv4 ICMP echo request (`ICMP_ID`, `seq`, `payload`), both
/// checksums computed here.
pub fn echo_request(dst: &[u8; 6], src: &[u8; 6], sip: Ipv4Addr, dip: Ipv4Addr, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = eth_header(dst, src, ETH_P_IP);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&seq.to_be_bytes()); // identification
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = IPPROTO_ICMP;
    ip[12..16].copy_from_slice(&sip.octets());
    ip[16..20].copy_from_slice(&dip.octets());
    let c = inet_csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut icmp = vec![ICMP_ECHO, 0, 0, 0];
    icmp.extend_from_slice(&ICMP_ID.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(payload);
    let c = inet_csum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&icmp);
    f
}

/// A received frame, as far as `ping` cares.
#[derive(Debug)]
pub enum Rx {
    Arp { op: u16, sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr },
    /// An ICMP echo reply to us: its IP and ICMP checksums verified, identifier, sequence
    /// number, payload.
    EchoReply { src: Ipv4Addr, ip_csum_ok: bool, icmp_csum_ok: bool, id: u16, seq: u16, payload: Vec<u8> },
    Other,
}

fn mac_at(f: &[u8], at: usize) -> [u8; 6] {
    let mut m = [0u8; 6];
    m.copy_from_slice(&f[at..at + 6]);
    m
}

fn ip_at(f: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(f[at], f[at + 1], f[at + 2], f[at + 3])
}

/// What frame `f` is, if it is addressed to `mac` (or broadcast).
pub fn parse(f: &[u8], mac: &[u8; 6], ip: Ipv4Addr) -> Rx {
    if f.len() < ETH_HLEN || (f[0..6] != mac[..] && f[0..6] != BROADCAST[..]) {
        return Rx::Other;
    }
    let proto = u16::from_be_bytes([f[12], f[13]]);
    let l3 = &f[ETH_HLEN..];
    if proto == ETH_P_ARP && l3.len() >= 28 && l3[0..6] == [0, 1, 0x08, 0x00, 6, 4] {
        return Rx::Arp { op: u16::from_be_bytes([l3[6], l3[7]]), sha: mac_at(l3, 8), spa: ip_at(l3, 14), tpa: ip_at(l3, 24) };
    }
    if proto != ETH_P_IP || l3.len() < 20 || l3[0] >> 4 != 4 {
        return Rx::Other;
    }
    let ihl = usize::from(l3[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([l3[2], l3[3]]));
    // The frame may be longer (padding, FCS), never shorter.
    if ihl < 20 || total < ihl + 8 || total > l3.len() || l3[9] != IPPROTO_ICMP || ip_at(l3, 16) != ip {
        return Rx::Other;
    }
    let icmp = &l3[ihl..total];
    if icmp[0] != ICMP_ECHO_REPLY || icmp[1] != 0 {
        return Rx::Other;
    }
    Rx::EchoReply {
        src: ip_at(l3, 12),
        ip_csum_ok: inet_csum(&l3[..ihl]) == 0,
        icmp_csum_ok: inet_csum(icmp) == 0,
        id: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
        payload: icmp[8..].to_vec(),
    }
}

// --- The igbvf-ping command --------------------------------------------------------------

/// What `ping` saw of the exchange.
#[derive(Default)]
struct Exchange {
    arp_sent: u64,
    arp_answered: u64,
    rx_other: u64,
    sent: u64,
    received: u64,
    seq_ok: u64,
    payload_ok: u64,
    csum_ok: u64,
    bytes: u64,
    unexpected: u64,
    lost_seq: u16,
}

/// Handles `f`: answers an ARP request for `ip`; counts what is not `want`. Returns the
/// frame if `want` says it is the one waited for.
fn dispatch(vf: &mut IgbVf, x: &mut Exchange, mac: &[u8; 6], ip: Ipv4Addr, f: &[u8], want: &dyn Fn(&Rx) -> bool) -> Result<Option<Rx>> {
    let rx = parse(f, mac, ip);
    if want(&rx) {
        return Ok(Some(rx));
    }
    match rx {
        Rx::Arp { op: ARP_REQUEST, sha, spa, tpa, .. } if tpa == ip => {
            vf.send(&arp_frame(&sha, ARP_REPLY, mac, ip, &sha, spa))?;
            x.arp_answered += 1;
        }
        Rx::EchoReply { .. } => x.unexpected += 1,
        _ => x.rx_other += 1,
    }
    Ok(None)
}

/// Waits up to `wait` for a frame `want` accepts, dispatching the others.
fn wait_for(vf: &mut IgbVf, x: &mut Exchange, mac: &[u8; 6], ip: Ipv4Addr, wait: Duration, want: &dyn Fn(&Rx) -> bool) -> Result<Option<Rx>> {
    let end = Instant::now() + wait;
    let mut found = None;
    while found.is_none() {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        for f in vf.poll_rx(left)? {
            match dispatch(vf, x, mac, ip, &f, want)? {
                Some(rx) if found.is_none() => found = Some(rx),
                Some(Rx::EchoReply { .. }) => x.unexpected += 1,
                _ => {}
            }
        }
    }
    Ok(found)
}

/// `igbvf-ping`: drives the VF behind `dev` (its DMA mapped through `dma`) and exchanges
/// frames with the host at `peer`, as `ip`: VF reset and mailbox (MAC address from the PF,
/// or `OWN_MAC` set through the mailbox), rings and MSI-X, an ARP request for `peer`, then
/// `count` echo requests, one at a time, each reply checked (sequence number, payload byte
/// for byte, IP and ICMP checksums). Prints what it saw as `key=value` lines.
pub fn ping(dev: &Device, dma: &dyn DmaMap, ip: Ipv4Addr, peer: Ipv4Addr, count: u16) -> Result<()> {
    let t0 = Instant::now();
    let mut vf = IgbVf::new(dev, dma, IOVA_BASE)?;
    let (gprc0, gptc0) = (vf.read_reg(VFGPRC)?, vf.read_reg(VFGPTC)?);

    let reply = vf.reset()?;
    println!("reset=ok");
    let mac = match reply {
        ResetReply::Ack(m) => {
            println!("mbx_reset=ack");
            println!("mbx_reset_mac={}", fmt_mac(&m));
            println!("mbx_set_mac=skipped");
            println!("mac_source=pf");
            m
        }
        ResetReply::Nack => {
            println!("mbx_reset=nack");
            let ok = vf.set_mac(&OWN_MAC)?;
            println!("mbx_set_mac={}", if ok { "ack" } else { "nack" });
            if !ok {
                return Err(err(format!("the PF refused SET_MAC_ADDR {}", fmt_mac(&OWN_MAC)), libc::EPERM));
            }
            println!("mac_source=own");
            OWN_MAC
        }
    };
    println!("mac={}", fmt_mac(&mac));
    let lpe = vf.set_lpe(MAX_FRAME)?;
    println!("mbx_set_lpe={}", if lpe { "ack" } else { "nack" });
    // The all-hosts group: a multicast filter the PF keeps for the VF.
    let mc = vf.set_multicast(&[[0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]])?;
    println!("mbx_set_multicast={}", if mc { "ack" } else { "nack" });
    println!("link_up={}", u32::from(vf.link_up()?));

    vf.enable_msix()?;
    vf.init_rings()?;
    vf.enable_interrupts()?;
    println!("msix_vectors={VECTORS}");

    // ARP: the peer's MAC address (and the peer learns ours).
    let mut x = Exchange::default();
    let mut peer_mac = None;
    for _ in 0..5 {
        vf.send(&arp_frame(&BROADCAST, ARP_REQUEST, &mac, ip, &[0; 6], peer))?;
        x.arp_sent += 1;
        let want = |r: &Rx| matches!(r, Rx::Arp { op: ARP_REPLY, spa, tpa, .. } if *spa == peer && *tpa == ip);
        if let Some(Rx::Arp { sha, .. }) = wait_for(&mut vf, &mut x, &mac, ip, Duration::from_secs(2), &want)? {
            peer_mac = Some(sha);
            break;
        }
    }
    println!("arp_requests_sent={}", x.arp_sent);
    let Some(peer_mac) = peer_mac else {
        vf.collect_irqs()?;
        let s = vf.ring_state()?;
        return Err(timeout(format!(
            "no ARP reply from {peer} to {} requests: rx_frames={} rx_irqs={} rx_other={} tx_done={}/{} RDH {} RDT {}",
            x.arp_sent, vf.counters.rx_frames, vf.counters.rx_irqs, x.rx_other, vf.counters.tx_done, vf.counters.tx_frames, s.rx_head, s.rx_tail
        )));
    };
    println!("arp_reply_mac={}", fmt_mac(&peer_mac));
    println!("arp_reply_ip={peer}");

    // Echo requests, one at a time.
    for seq in 1..=count {
        let payload = echo_payload(seq);
        vf.send(&echo_request(&peer_mac, &mac, ip, peer, seq, &payload))?;
        x.sent += 1;
        let want = |r: &Rx| matches!(r, Rx::EchoReply { src, id: ICMP_ID, .. } if *src == peer);
        match wait_for(&mut vf, &mut x, &mac, ip, Duration::from_secs(5), &want)? {
            Some(Rx::EchoReply { ip_csum_ok, icmp_csum_ok, seq: s, payload: p, .. }) => {
                x.received += 1;
                x.bytes += p.len() as u64;
                x.seq_ok += u64::from(s == seq);
                x.payload_ok += u64::from(p == echo_payload(s));
                x.csum_ok += u64::from(ip_csum_ok && icmp_csum_ok);
            }
            _ => {
                x.lost_seq = seq;
                eprintln!("mpw-vfio-client: no echo reply to seq {seq} in 5 s; stopping");
                break;
            }
        }
    }
    // A last look for late or duplicate replies.
    wait_for(&mut vf, &mut x, &mac, ip, Duration::from_millis(200), &|_| false)?;
    vf.collect_irqs()?;
    let s = vf.ring_state()?;
    let (gprc1, gptc1) = (vf.read_reg(VFGPRC)?, vf.read_reg(VFGPTC)?);
    vf.shutdown()?;

    let c = &vf.counters;
    println!("arp_requests_answered={}", x.arp_answered);
    println!("icmp_sent={}", x.sent);
    println!("icmp_received={}", x.received);
    println!("icmp_seq_ok={}", x.seq_ok);
    println!("icmp_payload_ok={}", x.payload_ok);
    println!("icmp_csum_ok={}", x.csum_ok);
    println!("icmp_payload_bytes={}", x.bytes);
    println!("icmp_unexpected={}", x.unexpected);
    println!("icmp_lost_seq={}", x.lost_seq);
    println!("rx_frames={}", c.rx_frames);
    println!("rx_other={}", x.rx_other);
    println!("rx_errors={}", c.rx_errors);
    println!("rx_irqs={}", c.rx_irqs);
    println!("rx_frames_without_irq={}", c.rx_without_irq);
    println!("tx_frames={}", c.tx_frames);
    println!("tx_done={}", c.tx_done);
    println!("tx_irqs={}", c.tx_irqs);
    println!("other_irqs={}", c.other_irqs);
    println!("mbx_sent={}", c.mbx_sent);
    println!("mbx_received={}", c.mbx_received);
    println!("mbx_pf_control={}", c.mbx_pf_control);
    println!("vf_gprc_delta={}", gprc1.wrapping_sub(gprc0));
    println!("vf_gptc_delta={}", gptc1.wrapping_sub(gptc0));
    println!("rx_ring_size={}", s.rx.count);
    println!("rx_ring_iova={:#x}", s.rx_ring_iova);
    println!("rx_head={}", s.rx_head);
    println!("rx_tail={}", s.rx_tail);
    println!("rx_next_to_clean={}", s.rx.next_to_clean);
    println!("rx_next_to_use={}", s.rx.next_to_use);
    println!("rx_posted={}", s.rx_posted.len());
    let iovas: Vec<String> = s.rx_posted.iter().map(|(i, a)| format!("{i}@{a:#x}")).collect();
    println!("rx_posted_iovas={}", iovas.join(","));
    println!("tx_ring_size={}", s.tx.count);
    println!("tx_ring_iova={:#x}", s.tx_ring_iova);
    println!("tx_head={}", s.tx_head);
    println!("tx_tail={}", s.tx_tail);
    println!("tx_next_to_clean={}", s.tx.next_to_clean);
    println!("tx_next_to_use={}", s.tx.next_to_use);
    println!("elapsed_ms={}", t0.elapsed().as_millis());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_verify_to_zero() {
        let ip = Ipv4Addr::new(10, 77, 0, 2);
        let peer = Ipv4Addr::new(10, 77, 0, 1);
        for seq in [1u16, 2, 3, 100, 65535] {
            let p = echo_payload(seq);
            assert!((56..=MAX_PAYLOAD).contains(&p.len()));
            let mut f = echo_request(&[1; 6], &OWN_MAC, ip, peer, seq, &p);
            // Turn the request into the reply the peer would send.
            f[0..6].copy_from_slice(&OWN_MAC);
            f[ETH_HLEN + 12..ETH_HLEN + 16].copy_from_slice(&peer.octets());
            f[ETH_HLEN + 16..ETH_HLEN + 20].copy_from_slice(&ip.octets());
            f[ETH_HLEN + 20] = ICMP_ECHO_REPLY;
            // Addresses swapped: the IP checksum is unchanged; the ICMP one loses 8.
            let c = u16::from_be_bytes([f[ETH_HLEN + 22], f[ETH_HLEN + 23]]);
            let sum = u32::from(c) + 0x0800;
            let c = ((sum & 0xffff) + (sum >> 16)) as u16;
            f[ETH_HLEN + 22..ETH_HLEN + 24].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&[0; 4]); // FCS room
            match parse(&f, &OWN_MAC, ip) {
                Rx::EchoReply { src, ip_csum_ok, icmp_csum_ok, id, seq: s, payload } => {
                    assert_eq!(src, peer);
                    assert!(ip_csum_ok && icmp_csum_ok);
                    assert_eq!((id, s), (ICMP_ID, seq));
                    assert_eq!(payload, p);
                }
                r => panic!("{r:?}"),
            }
        }
    }

    #[test]
    fn arp_round_trip() {
        let f = arp_frame(&BROADCAST, ARP_REQUEST, &OWN_MAC, Ipv4Addr::new(10, 77, 0, 2), &[0; 6], Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(f.len(), 42);
        match parse(&f, &[9; 6], Ipv4Addr::new(10, 77, 0, 1)) {
            Rx::Arp { op, sha, spa, tpa } => {
                assert_eq!((op, sha), (ARP_REQUEST, OWN_MAC));
                assert_eq!((spa, tpa), (Ipv4Addr::new(10, 77, 0, 2), Ipv4Addr::new(10, 77, 0, 1)));
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn multicast_hash_as_igbvf() {
        // e1000_hash_mc_addr_vf with 128 registers: bit_shift 4.
        assert_eq!(multicast_hash(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]), 0x010);
        assert_eq!(multicast_hash(&[0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa]), 0xfaf);
    }

    #[test]
    fn ring_unused_keeps_one_slot() {
        let mut r = Ring::new(32, 0, 0);
        assert_eq!(r.unused(), 31);
        r.next_to_use = 31;
        assert_eq!(r.unused(), 0);
        r.next_to_clean = 5;
        assert_eq!(r.unused(), 5);
    }
}
