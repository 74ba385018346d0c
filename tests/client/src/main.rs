// SPDX-License-Identifier: GPL-2.0

//! `mpw-vfio-client`: a small real VFIO client for the mdev_pci_wrap integration tests.
//!
//! It prints what it finds as `key=value` lines so that shell tests can compare them with
//! sysfs. Errors go to stderr with the failing operation and errno, and exit with status 1.
//!
//! Commands:
//!   group-open <group> <device> [OP]...
//!       open <device> through the legacy type1 container path; print its device info, every
//!       PCI region's info and the config-space IDs; then run the OPs in order:
//!         read:<region>:<offset>:<len>           print `read_<region>_<offset>=<hex>`
//!         write:<region>:<offset>:<len>:<value>  write <value> (little endian)
//!         reset                                  VFIO_DEVICE_RESET; print `reset=ok` or
//!                                                `reset=<errno name>`
//!         mmap:<region>:<offset>:<len>[:<at>]    mmap <len> bytes there and read 4 bytes at
//!                                                <at> in the mapping; print
//!                                                `mmap_<region>_<offset + at>=<hex>` or
//!                                                `mmap_<region>_<offset + at>_error=<error>`
//!       (len 1, 2, 4 or 8; numbers decimal or 0x-hex)
//!   cdev-open <sysfs device dir> [OP]...
//!       the same through the device cdev bound to a new iommufd context and attached to its
//!       IOAS (what QEMU does with `-object iommufd`)
//!   nvme-identify <sysfs device dir>
//!       as cdev-open, then drive an NVMe controller: admin queues in IOAS-mapped memory,
//!       Identify Controller by DMA (print `identify_*`); then unmap the data page's IOVA,
//!       issue it again and print what happened (`after_unmap_*`)
//!   igbvf-ping <sysfs device dir> <our IPv4> <peer IPv4> <count> [hold <seconds>]
//!       as cdev-open, then drive an Intel 82576 VF as Linux's igbvf does (igbvf.rs) and
//!       exchange frames with the PF's netdev (the igb switches VF-PF traffic internally):
//!       VF reset (`reset=ok`), the PF mailbox's VF_RESET (`mbx_reset=ack|nack`,
//!       `mbx_reset_mac=`), SET_MAC_ADDR of a locally administered address if the PF has
//!       none for the VF (`mbx_set_mac=ack|skipped`, `mac_source=pf|own`, `mac=`), SET_LPE
//!       and SET_MULTICAST (`mbx_set_lpe=`, `mbx_set_multicast=`), `link_up=`; an RX and a
//!       TX ring in IOAS-mapped memory, MSI-X vectors on eventfds (`msix_vectors=`); an ARP
//!       request for the peer (`arp_requests_sent=`, `arp_reply_mac=`, `arp_reply_ip=`),
//!       then <count> ICMP echo requests, one at a time, each reply checked
//!       (`icmp_sent=`, `icmp_received=`, `icmp_seq_ok=`, `icmp_payload_ok=` (byte for
//!       byte), `icmp_csum_ok=` (IP and ICMP), `icmp_payload_bytes=`, `icmp_unexpected=`,
//!       `icmp_lost_seq=`: 0 or the first unanswered), ARP requests for our address answered
//!       (`arp_requests_answered=`); the counts `rx_frames=`, `rx_other=`, `rx_errors=`,
//!       `rx_irqs=`, `rx_frames_without_irq=`, `tx_frames=`, `tx_done=`, `tx_irqs=`,
//!       `other_irqs=`, `mbx_sent=`, `mbx_received=`, `mbx_pf_control=`, the VF's own
//!       counters' growth (`vf_gprc_delta=`, `vf_gptc_delta=`); the rings' state
//!       (`rx_ring_size=`, `rx_ring_iova=`, `rx_head=`, `rx_tail=` (the device's),
//!       `rx_next_to_clean=`, `rx_next_to_use=` (the driver's), `rx_posted=`,
//!       `rx_posted_iovas=<slot>@<iova>,...`, the same `tx_*` but the posted buffers),
//!       `elapsed_ms=`; with `hold`, then print `held`, keep the device open (its queues
//!       stopped) for <seconds> and print `released`: the PF keeps what the VF asked of it
//!       until the function's reset at close
//!   qtest-nvme <devfn> [QEMU ARGS]...
//!       start QEMU ($MPW_QEMU, or qemu-system-x86_64) with ARGS (machine, accelerator,
//!       memory, the device at <devfn> of bus 0), its vCPUs stopped and a qtest socket, and be
//!       the guest: the function's config space through 0xcf8/0xcfc (`guest_vendor=`,
//!       `guest_device=`, `guest_class=`, `guest_subsystem=`, `guest_header_type=`,
//!       `guest_intx_pin=`, `guest_caps=`), BARs placed and decoding on (`guest_bar<i>=`,
//!       `guest_command=`), MSI-X vector 0 aimed at guest RAM (`guest_msix=`,
//!       `guest_msix_enabled=`), NVMe CAP and VS read through the guest-physical BAR, an admin
//!       queue in guest RAM, Identify Controller (`identify_status=`, `identify_vid=`,
//!       `identify_sn=`, `identify_mn=`: what the controller wrote into guest RAM), and the
//!       completion's MSI-X message in guest RAM (`msix_fired=`, `msix_message=`)
//!   qtest-nvme-listen <socket> <seconds> <devfn|->
//!       the same guest for a QEMU another program starts (libvirt: `-qtest unix:<socket>` in
//!       the domain's `<qemu:commandline>`): listen on <socket> (mode 0666), print
//!       `qtest_listening=<socket>`, wait up to <seconds> for QEMU to connect (`qemu_pid=` is
//!       the peer's, from SO_PEERCRED), give each bridge on bus 0 a bus number as firmware
//!       does (`guest_bridges=<devfn>:<bus>,...`), then as qtest-nvme (`-`: no function to
//!       drive)
//!   qtest-nvme-listen <socket> <seconds> <devfn> eject <seconds>
//!       then stay, up to the last <seconds>, as the guest's ACPI PCI hot-plug handler: eject
//!       the first slot QEMU asks the guest to give up (`device_del`, `virsh detach-device`)
//!       (`guest_eject_watch=1` once watching, `ejected=<bus selector>:<slot mask>`, `ejects=`)
//!   hold <sysfs device dir> <seconds>
//!       open the device (cdev + iommufd), print `held`, keep it open, then close it
//!   bad-args <sysfs device dir>
//!       malformed ioctls and accesses; prints `<case>=<errno name>` for each
//!   same-group <sysfs dir A> <sysfs dir B>
//!       bind A and B to one iommufd context (`same_ctx=`), then A and B to two contexts
//!       (`other_ctx=`): `ok` or the error
//!   irq-info <sysfs device dir>
//!       print `irq<i>_count=`, `irq<i>_flags=` and `irq<i>_flag_names=` (EVENTFD|NORESIZE...)
//!       of every IRQ index (VFIO_DEVICE_GET_IRQ_INFO)
//!   nvme-irq <sysfs device dir>
//!       enable MSI-X vector 0 with an eventfd (`msix_enabled=`, `proc_interrupts_msix=`: lines
//!       of /proc/interrupts naming an `mpw-msix[` vector), then have an NVMe controller post
//!       an Identify completion, which raises vector 0 (`identify_status=`, `msix0_fired=`,
//!       `msix0_count=`); signal the eventfd through VFIO_DEVICE_SET_IRQS with DATA_NONE and
//!       DATA_BOOL (`loopback_none=`, `loopback_bool=`, `loopback_bool_false=`: the counter
//!       read); detach the eventfd (fd -1) and complete another Identify
//!       (`after_detach_status=`, `after_detach_fired=`); disable MSI-X
//!       (`proc_interrupts_msix_after_disable=`)
//!   intx-probe <sysfs device dir> <region> <offset>
//!   vendor-region <sysfs device dir>
//!       the first device-specific region (index 9) of the test vendor: `num_regions=`,
//!       `flags=`, `size=`, `type=`, `subtype=`, then `initial_pattern=` (each byte offset %
//!       251), `whole_readback=` (a pattern written and read back in one access each),
//!       `across_pages=`, and the errnos of `read_past_end=`, `write_at_end=`, `next_index=`
//!       (the region info of index 10) and `mmap=`
//!   dma-probe <sysfs device dir> <region> <offset>
//!       a vendor's kernel access to the user's IOVAs, on a device where an 8-byte write of an
//!       IOVA at <offset> of <region> makes the vendor read 8 bytes there (shown at
//!       <offset> + 8) and write their complement just after them: a page holding a pattern
//!       mapped at one IOVA in IOAS A and another in IOAS B; for each probe `NAME=` (ok or the
//!       errno), `NAME_seen=` and `NAME_wrote=`: `unattached` (not attached yet), `a`,
//!       `a_offset` (0x100 in), `a_unmapped` (B's IOVA), `a_past_end` (crossing the end of
//!       the mapping), after attaching to B `b` and `b_old_iova`, and `detached`
//!       the emulated INTx line of a device whose register at <offset> of <region> sets the
//!       line's level (bit 0): `intx_count=`, `intx_flags=`, `pin=`, `unmask_before_enable=`,
//!       then, with a trigger eventfd, the counts signalled `fired_on_assert=`,
//!       `fired_again_while_automasked=`, `fired_on_unmask_still_asserted=`,
//!       `fired_on_unmask_deasserted=`, `fired_on_assert_while_masked=`, then with an unmask
//!       eventfd (`unmask_eventfd=`, `mask_eventfd=`: refused) `fired_on_assert_with_unmask_eventfd=`,
//!       `fired_on_unmask_eventfd_still_asserted=`, `fired_on_unmask_eventfd_deasserted=`,
//!       `fired_on_assert_after_unmask_eventfd=`, `unmask_eventfd_removed=`,
//!       `fired_on_removed_unmask_eventfd=`,
//!       `fired_on_unmask_pending=`, `fired_with_intx_disable=`, `loopback=`,
//!       `fired_after_disable=`, and STATUS's interrupt bit (`status_asserted=`,
//!       `status_deasserted=`)
//!   irq-loopback <sysfs device dir>
//!       enable every MSI-X vector, each with its own eventfd (`msix_count=`,
//!       `proc_interrupts_msix=`), signal the last one with DATA_NONE (`loopback_last=`, and
//!       `loopback_others=`: the sum of the other counters), disable MSI-X
//!       (`proc_interrupts_msix_after_disable=`)
//!   irq-trigger <sysfs device dir> msi|msix [write:R:OFF:LEN:VAL]...
//!       enable vector 0 of MSI or MSI-X with an eventfd (`irq_count=`, `cap_offset=`,
//!       `proc_interrupts=`, `user_ctrl_enable=`: the enable bit in the user's view of the
//!       capability), do the writes (which should make the device interrupt), wait for the
//!       eventfd (`irq_fired=`), disable (`proc_interrupts_after_disable=`)
//!   irq-bad-args <sysfs device dir>
//!       malformed VFIO_DEVICE_SET_IRQS / GET_IRQ_INFO requests; prints `<case>=<errno name>`
//!       (`set_irqs_msi_while_msix`, `set_irqs_msix_while_msi`: `skipped` on a function
//!       without both)
//!   req-wait <sysfs device dir> <seconds>
//!       open the device, set the request (REQ) eventfd, print `held`, wait for the request;
//!       print `req_fired=1` and close the device as soon as it comes (`req_fired=0` if it does
//!       not), then `released`
//!
//!   Requests (OP) of cdev-open and mmap-probe, besides read:/write:/mmap:/reset:
//!         sleep:<ms>                             sleep
//!         hw:<offset>:<len>                      print `hw_<offset>=<hex>`: the wrapped
//!                                                function's hardware config (its sysfs
//!                                                `config`, read while the device is open)
//!         sysfs:<name>                           print `sysfs_<name>=<value>` of the wrapped
//!                                                function (e.g. `sysfs:power_state`)
//!
//!   mmap-probe <sysfs> <region> <offset> <len> <at> [OP...] [then OP...]
//!       run the OPs before `then`, mmap <len> bytes of <region> at <offset> (`mmap=ok`), read
//!       at <at> (`probe_before=`), run the OPs after `then` (all OPs after it if there is no
//!       `then`), then read the mapping at <at> again in a forked child
//!       (`probe_after=ok|sigbus|sigsegv|signal<N>|exit<N>|timeout`, `probe_value_after=`)
//!       and pread the same offset (`pread_after=ok|EIO|<errno>`, `pread_value_after=`)
//!   reset-race <sysfs> ioctl|flr <n>
//!       a thread reads BAR0 at 0 through an mmap in a tight loop while this one makes <n>
//!       resets (VFIO_DEVICE_RESET, or Initiate-FLR written to PCIe DEVCTL through region 7),
//!       30 ms apart: `resets=`, `reset_errors=`, `reset_<i>=<ms>ms,held=<ms>ms@+<ms>ms,reads=<n>`
//!       (each call's length; its longest stretch with no read completing, and where that
//!       began; the reads completed within it), `resets_flr_long=` (calls of at least FLR's
//!       100 ms wait), `resets_not_held=` (of those, the ones with no stretch of 90 ms),
//!       `reset_ms_max=`, `reads_total=`, `max_read_ms=` (longest single read)
//!   whole-bar-mmap <sysfs> <region>
//!       the region info (`size=`, `flags=`, `caps=`: capability IDs of the region info chain,
//!       comma-separated), an mmap of the whole region (`mmap=ok|<errno>`), and a read of the
//!       first dword of every page in a forked child (`pages=`, `probe=`, `read_ok=`,
//!       `page_dwords=`)
//!   revoke-wait <sysfs> <seconds>
//!       open, mmap BAR0's first page and read it (`value_before=`), set the REQ eventfd,
//!       print `held`, wait for the request (`req_fired=`), probe the mapping in a child
//!       (`probe_after_req=`) and pread BAR0 (`pread_after_req=`), print `closing`, close,
//!       print `released`
//!   err-wait <sysfs> <seconds>
//!       open, print `err_count=` (ERR IRQ index), set the ERR eventfd, print `held`, wait
//!       for it (`err_fired=<count>`), close, print `released`
//!   aer-inject <DDDD:BB:DD.F> <uncor_status hex> [cor_status hex]
//!       write a `struct aer_error_inj` to /dev/aer_inject (`aer_inject=ok`)
//!   config-caps <sysfs>
//!       the capability chains of the hardware (`hw_caps=`, `hw_ecaps=`) and of the user's
//!       view (`user_caps=`, `user_ecaps=`, `user_ecap_placeholders=`), what vfio-pci would
//!       show (`expected_user_caps=`, `expected_user_ecaps=`), hides (`hidden_caps=`,
//!       `hidden_ecaps=`) and makes read-only (`ro_caps=`: `ID@OFF+LEN`); lists of `ID@OFF`
//!   config-ro <sysfs>
//!       for every read-only capability (config-caps) and PCIe Link Control: which the
//!       hardware lets a direct sysfs write change (`ro_hw_writable=`, restored at once), then,
//!       with the device open, write every register past the header flipped through region 7
//!       and compare the hardware before and after: `ro_ranges=`, `ro_units=`,
//!       `ro_exercised=`, `ro_ecaps_exercised=`, `ro_changed=` (`OFF:before->after`, undone),
//!       `ro_write_errors=`
//!   group-iommufd-identify <sysfs> [container]
//!       open the mdev's VFIO group with /dev/iommu (or the container node given, such as
//!       /dev/vfio/vfio after `mpw-vfio-container enable`) as its container (iommufd's type1
//!       compatibility: VFIO_GROUP_SET_CONTAINER, VFIO_CHECK_EXTENSION (`type1v2=`),
//!       VFIO_SET_IOMMU), get the device fd (`device_fd=ok`), map the NVMe queues with
//!       VFIO_IOMMU_MAP_DMA and run Identify Controller (`identify_status=`, `identify_sn=`,
//!       ...), unmap (`unmap_dma=ok`)
//!   ioas-swap <sysfs>
//!       cdev + iommufd with three IOASes A, B, C: Identify through A (`a_status=`, `a_sn=`);
//!       VFIO_DEVICE_DETACH_IOMMUFD_PT (`detach=`) and Identify again (`detached_status=`,
//!       `detached_buffer_untouched=`); attach B with the same pages (`attach_b=`), reset,
//!       Identify (`b_status=`, `b_sn=`); attach C while attached to B (`attach_c=`: a
//!       replacement) with another data page at the same IOVA, Identify (`c_status=`, `c_sn=`
//!       read from C's page, `c_b_page_untouched=`)
//!   fuzz <sysfs> <operations> <seed>
//!       random ioctls (argsz, flags, index, offsets, counts, payloads), region reads and
//!       writes at random offsets and sizes, mmaps with random offsets, lengths and flags,
//!       SET_IRQS with random eventfds and config writes; prints progress on stderr and
//!       `fuzz_ops=`, `fuzz_resets=`, `fuzz_seconds=`, `fuzz_slowest_ms=`, `fuzz_outcomes=`
//!       (counts by operation and errno); fails if one operation takes over 20 s
//!   bench-mmio <sysfs> <region> <read off> <write off> <iters>
//!       (make bench, P1) mmap the region; <iters> 32-bit MMIO reads at <read off>, then
//!       <iters> writes of its own value to <write off>: `mmio_read_ns=`,
//!       `mmio_read_per_s=`, `mmio_write_ns=`, `mmio_write_per_s=`
//!   bench-rw <sysfs> <region> <read off> <write off> <iters>
//!       (P2) trapped accesses, pread/pwrite of the device fd: config space reads at 0 and
//!       COMMAND writes (`cfg_read_ns=`, `cfg_write_ns=`), region reads and writes
//!       (`bar_read_ns=`, `bar_write_ns=`)
//!   bench-nvme-io <sysfs> <queue depth> <count>
//!       (P3) an NVMe controller's admin queue, then an I/O queue pair of the client's
//!       (polled), <count> 4 KiB reads of the first active namespace with <queue depth>
//!       outstanding: `nvme_read_qd<N>_ns=`, `nvme_read_qd<N>_per_s=` (IOPS)
//!   open-ready-vfio <bdf>
//!       (P4) driver_override, unbind, bind to vfio-pci, open the cdev, bind an iommufd,
//!       attach, map a page; `unbind_ns=`, `bind_ns=`, `open_ns=`, `ready_ns=` (bind and
//!       open), `total_ns=` (unbind, bind and open), `close_ns=`
//!   open-ready-mdev <parent bdf> <type> <uuid>
//!       (P4) `echo <uuid> > create`, then open as above: `create_ns=`, `open_ns=`,
//!       `ready_ns=` and `total_ns=` (both create and open), `close_ns=`

mod bench;
mod config;
mod dma;
mod fuzz;
mod guest_nvme;
mod igbvf;
mod irq;
mod nvme;
mod probe;
mod qtest;
mod vfio;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// A request on the command line, run in order on the open device.
enum Op {
    /// Print `read_<region>_<offset>=<hex>`.
    Read { region: u32, offset: u64, len: usize },
    Write { region: u32, offset: u64, len: usize, value: u64 },
    /// An mmap of `len` bytes, read at `at` in the mapping.
    Mmap { region: u32, offset: u64, len: usize, at: u64 },
    /// VFIO_DEVICE_RESET.
    Reset,
    /// Sleep this many milliseconds.
    Sleep(u64),
    /// Read the wrapped function's hardware config space (its sysfs `config`): print
    /// `hw_<offset>=<hex>`.
    Hw { offset: u64, len: usize },
    /// Read a sysfs attribute of the wrapped function: print `sysfs_<name>=<value>`.
    Sysfs(String),
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_op(s: &str) -> Option<Op> {
    if s == "reset" {
        return Some(Op::Reset);
    }
    let (kind, rest) = s.split_once(':')?;
    let mut it = rest.split(':');
    let op = match kind {
        "sleep" => Op::Sleep(parse_num(it.next()?)?),
        "sysfs" => {
            let name = it.next()?;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            Op::Sysfs(name.to_string())
        }
        "hw" => {
            let offset = parse_num(it.next()?)?;
            let len = usize::try_from(parse_num(it.next()?)?).ok()?;
            if !matches!(len, 1 | 2 | 4) {
                return None;
            }
            Op::Hw { offset, len }
        }
        "mmap" => {
            let region = u32::try_from(parse_num(it.next()?)?).ok()?;
            let offset = parse_num(it.next()?)?;
            let len = usize::try_from(parse_num(it.next()?)?).ok()?;
            let at = match it.next() {
                Some(a) => parse_num(a)?,
                None => 0,
            };
            if at + 4 > len as u64 {
                return None;
            }
            Op::Mmap { region, offset, len, at }
        }
        "read" | "write" => {
            let region = u32::try_from(parse_num(it.next()?)?).ok()?;
            let offset = parse_num(it.next()?)?;
            let len = usize::try_from(parse_num(it.next()?)?).ok()?;
            if !matches!(len, 1 | 2 | 4 | 8) {
                return None;
            }
            if kind == "write" {
                Op::Write { region, offset, len, value: parse_num(it.next()?)? }
            } else {
                Op::Read { region, offset, len }
            }
        }
        _ => return None,
    };
    if it.next().is_some() {
        return None;
    }
    Some(op)
}

fn parse_ops(args: &[&str]) -> Option<Vec<Op>> {
    args.iter().map(|s| parse_op(s)).collect()
}

fn no_parent() -> vfio::Error {
    vfio::Error {
        what: "hw:/sysfs: requests need a wrapped PCI function (an mdev's parent)".into(),
        err: std::io::Error::from_raw_os_error(libc::ENOENT),
    }
}

/// Runs one request; `parent` is the sysfs directory of the wrapped function, if known.
fn run_op(dev: &vfio::Device, parent: Option<&Path>, op: &Op) -> vfio::Result<()> {
    match op {
        Op::Reset => match dev.reset() {
            Ok(()) => println!("reset=ok"),
            Err(e) => println!("reset={}", vfio::outcome::<()>(Err(e.err))),
        },
        Op::Mmap { region, offset, len, at } => {
            let key = format!("mmap_{}_{:#x}", region, offset + at);
            match dev.mmap_read(*region, *offset, *len, *at as usize) {
                Ok(v) => println!("{key}={v:#x}"),
                Err(e) => println!("{key}_error={}", e.err),
            }
        }
        Op::Write { region, offset, len, value } => {
            dev.write_region(*region, *offset, &value.to_le_bytes()[..*len])?
        }
        Op::Read { region, offset, len } => {
            let mut buf = [0u8; 8];
            dev.read_region(*region, *offset, &mut buf[..*len])?;
            println!("read_{}_{:#x}={:#x}", region, offset, u64::from_le_bytes(buf));
        }
        Op::Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
        Op::Hw { offset, len } => {
            let hw = vfio::HwConfig::of_dir(parent.ok_or_else(no_parent)?);
            println!("hw_{:#x}={:#x}", offset, hw.read(*offset, *len)?);
        }
        Op::Sysfs(name) => {
            let path = parent.ok_or_else(no_parent)?.join(name);
            let v = std::fs::read_to_string(&path)
                .map_err(|err| vfio::Error { what: format!("read {}", path.display()), err })?;
            println!("sysfs_{name}={}", v.trim());
        }
    }
    Ok(())
}

fn group_open(group: u32, device: &str, ops: &[Op]) -> vfio::Result<()> {
    let c = vfio::Container::open(group)?;
    println!("group={group}");
    println!("group_viable={}", u32::from(c.group_flags & vfio::VFIO_GROUP_FLAGS_VIABLE != 0));
    let dev = c.device(device)?;
    show_device(&dev, ops, None)
}

/// Opens the cdev of `sysfs` bound to a new iommufd context and attached to its IOAS.
fn cdev_attach(sysfs: &str) -> vfio::Result<(vfio::Iommufd, vfio::Device)> {
    let iommufd = vfio::Iommufd::open()?;
    let dev = vfio::cdev_bind(&vfio::cdev_path(sysfs)?, &iommufd)?;
    dev.attach(&iommufd)?;
    Ok((iommufd, dev))
}

fn cdev_open(sysfs: &str, ops: &[Op]) -> vfio::Result<()> {
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    println!("cdev={}", vfio::cdev_path(sysfs)?);
    show_device(&dev, ops, vfio::parent_function(sysfs).ok().as_deref())
}

fn nvme_identify(sysfs: &str) -> vfio::Result<()> {
    let (iommufd, dev) = cdev_attach(sysfs)?;
    let mut ctrl = nvme::Nvme::init(&dev, &iommufd)?;
    let c = ctrl.identify_controller(1, Duration::from_secs(30))?;
    println!("identify_cid={}", c.cid);
    println!("identify_status={:#x}", c.status);
    let id = ctrl.data.bytes(0, 64);
    println!("identify_vid={:#06x}", u16::from_le_bytes([id[0], id[1]]));
    println!("identify_sn={}", nvme::ascii(&id[4..24]));
    println!("identify_mn={}", nvme::ascii(&id[24..64]));

    // Take the data page away from the device, then ask for the same DMA again.
    ctrl.data.write(0, &[0xa5; 64]);
    iommufd.unmap(nvme::IOVA_DATA, 4096)?;
    match ctrl.identify_controller(2, Duration::from_secs(15)) {
        Ok(c) => println!("after_unmap_status={:#x}", c.status),
        Err(e) => println!("after_unmap_error={e}"),
    }
    let untouched = ctrl.data.bytes(0, 64).iter().all(|&b| b == 0xa5);
    println!("after_unmap_buffer_untouched={}", u32::from(untouched));
    ctrl.shutdown()
}

fn igbvf_ping(sysfs: &str, ip: std::net::Ipv4Addr, peer: std::net::Ipv4Addr, count: u16, hold: Option<Duration>) -> vfio::Result<()> {
    let (iommufd, dev) = cdev_attach(sysfs)?;
    igbvf::ping(&dev, &iommufd, ip, peer, count)?;
    // The PF forgets the VF's MAC address when the function is reset at close: whoever
    // wants to see what the PF has for it looks now.
    if let Some(d) = hold {
        println!("held");
        std::io::stdout().flush().map_err(|err| vfio::Error { what: "flush stdout".into(), err })?;
        std::thread::sleep(d);
        println!("released");
    }
    Ok(())
}

fn hold(sysfs: &str, secs: u64) -> vfio::Result<()> {
    let (_iommufd, _dev) = cdev_attach(sysfs)?;
    println!("held");
    std::thread::sleep(Duration::from_secs(secs));
    println!("released");
    Ok(())
}

fn bad_args(sysfs: &str) -> vfio::Result<()> {
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    for (name, errno) in dev.bad_arg_cases() {
        println!("{name}={errno}");
    }
    Ok(())
}

/// `EVENTFD|NORESIZE` for `struct vfio_irq_info` flags 0x9 (unknown bits in hex).
fn irq_flag_names(flags: u32) -> String {
    let known = [
        (vfio::VFIO_IRQ_INFO_EVENTFD, "EVENTFD"),
        (vfio::VFIO_IRQ_INFO_MASKABLE, "MASKABLE"),
        (vfio::VFIO_IRQ_INFO_AUTOMASKED, "AUTOMASKED"),
        (vfio::VFIO_IRQ_INFO_NORESIZE, "NORESIZE"),
    ];
    let mut names: Vec<String> = known.iter().filter(|(b, _)| flags & b != 0).map(|(_, n)| n.to_string()).collect();
    let rest = known.iter().fold(flags, |f, (b, _)| f & !b);
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    names.join("|")
}

fn irq_info(sysfs: &str) -> vfio::Result<()> {
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    for index in 0..dev.info()?.num_irqs {
        let irq = dev.irq_info(index)?;
        println!("irq{index}_count={}", irq.count);
        println!("irq{index}_flags={:#x}", irq.flags);
        println!("irq{index}_flag_names={}", irq_flag_names(irq.flags));
    }
    Ok(())
}

const MSIX: u32 = vfio::VFIO_PCI_MSIX_IRQ_INDEX;
const TRIGGER_FD: u32 = vfio::VFIO_IRQ_SET_ACTION_TRIGGER | vfio::VFIO_IRQ_SET_DATA_EVENTFD;
const TRIGGER_NONE: u32 = vfio::VFIO_IRQ_SET_ACTION_TRIGGER | vfio::VFIO_IRQ_SET_DATA_NONE;
const TRIGGER_BOOL: u32 = vfio::VFIO_IRQ_SET_ACTION_TRIGGER | vfio::VFIO_IRQ_SET_DATA_BOOL;
/// What the host names the vectors it requests for a user's MSI-X (`mpw-msix[<n>](<VF>)`).
const HOST_MSIX_NAME: &str = "mpw-msix[";

/// The eventfd counter read after `r` (a request to signal it) or the request's error.
fn signalled(r: vfio::Result<()>, efd: &irq::EventFd, wait: Duration) -> vfio::Result<String> {
    Ok(match r {
        Ok(()) => efd.wait(wait)?.to_string(),
        Err(e) => e.to_string(),
    })
}

fn nvme_irq(sysfs: &str) -> vfio::Result<()> {
    let (iommufd, dev) = cdev_attach(sysfs)?;
    println!("msix_count={}", dev.irq_info(MSIX)?.count);
    // MSI-X first: the controller then creates its admin completion queue (always interrupt
    // enabled, on vector 0) with MSI-X on, and signals vector 0 for each completion.
    let efd = irq::EventFd::new()?;
    if let Err(e) = dev.set_irqs(TRIGGER_FD, MSIX, 0, 1, &irq::fds(&[efd.raw()])) {
        println!("msix_enabled={e}");
        return Err(e);
    }
    println!("msix_enabled=1");
    println!("proc_interrupts_msix={}", irq::proc_interrupts(HOST_MSIX_NAME)?);

    let mut ctrl = nvme::Nvme::init(&dev, &iommufd)?;
    let c = ctrl.identify_controller(1, Duration::from_secs(30))?;
    println!("identify_status={:#x}", c.status);
    let n = efd.wait(Duration::from_secs(10))?;
    println!("msix0_fired={}", u32::from(n > 0));
    println!("msix0_count={n}");

    // Loopback: VFIO signals the vector's eventfd itself.
    let r = dev.set_irqs(TRIGGER_NONE, MSIX, 0, 1, &[]);
    println!("loopback_none={}", signalled(r, &efd, Duration::from_secs(1))?);
    let r = dev.set_irqs(TRIGGER_BOOL, MSIX, 0, 1, &[1]);
    println!("loopback_bool={}", signalled(r, &efd, Duration::from_secs(1))?);
    let r = dev.set_irqs(TRIGGER_BOOL, MSIX, 0, 1, &[0]);
    println!("loopback_bool_false={}", signalled(r, &efd, Duration::from_millis(500))?);

    // Without its eventfd the vector stays enabled, but a completion signals nothing.
    dev.set_irqs(TRIGGER_FD, MSIX, 0, 1, &irq::fds(&[-1]))?;
    efd.take()?;
    match ctrl.identify_controller(2, Duration::from_secs(30)) {
        Ok(c) => println!("after_detach_status={:#x}", c.status),
        Err(e) => println!("after_detach_status={e}"),
    }
    let n = efd.wait(Duration::from_secs(3))?;
    println!("after_detach_fired={}", u32::from(n > 0));

    dev.set_irqs(TRIGGER_NONE, MSIX, 0, 0, &[])?;
    println!("proc_interrupts_msix_after_disable={}", irq::proc_interrupts(HOST_MSIX_NAME)?);
    ctrl.shutdown()
}

/// The config-space offset of capability `id` in the user's view of config space (0: none).
fn find_cap(dev: &vfio::Device, id: u8) -> vfio::Result<u64> {
    let cfg = vfio::VFIO_PCI_CONFIG_REGION_INDEX;
    let mut ptr = dev.read_reg(cfg, 0x34, 1)? & 0xfc;
    // At most 48 capabilities fit in the header's 192 bytes.
    for _ in 0..48 {
        if ptr == 0 {
            break;
        }
        if dev.read_reg(cfg, ptr, 1)? == u64::from(id) {
            return Ok(ptr);
        }
        ptr = dev.read_reg(cfg, ptr + 1, 1)? & 0xfc;
    }
    Ok(0)
}

fn irq_trigger(sysfs: &str, kind: &str, ops: &[Op]) -> vfio::Result<()> {
    let (index, cap_id, enable_bit, name) = match kind {
        "msi" => (vfio::VFIO_PCI_MSI_IRQ_INDEX, 0x05, 0x0001, "mpw-msi["),
        _ => (MSIX, 0x11, 0x8000, HOST_MSIX_NAME),
    };
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    println!("irq_count={}", dev.irq_info(index)?.count);
    let cap = find_cap(&dev, cap_id)?;
    println!("cap_offset={cap:#x}");
    let efd = irq::EventFd::new()?;
    dev.set_irqs(TRIGGER_FD, index, 0, 1, &irq::fds(&[efd.raw()]))?;
    println!("proc_interrupts={}", irq::proc_interrupts(name)?);
    // The host enabled the vectors in hardware; the user's view keeps the user's bits.
    if cap != 0 {
        let ctrl = dev.read_reg(vfio::VFIO_PCI_CONFIG_REGION_INDEX, cap + 2, 2)?;
        println!("user_ctrl_enable={}", u32::from(ctrl & enable_bit != 0));
    }
    for op in ops {
        if let Op::Write { region, offset, len, value } = op {
            dev.write_region(*region, *offset, &value.to_le_bytes()[..*len])?;
        }
    }
    let n = efd.wait(Duration::from_secs(10))?;
    println!("irq_fired={}", u32::from(n > 0));
    dev.set_irqs(TRIGGER_NONE, index, 0, 0, &[])?;
    println!("proc_interrupts_after_disable={}", irq::proc_interrupts(name)?);
    Ok(())
}

/// The emulated INTx line of a device whose register `offset` of region `region` sets the
/// line's level (bit 0), through vfio-pci's INTx protocol: trigger eventfd, automask,
/// VFIO_DEVICE_SET_IRQS mask and unmask.
fn intx_probe(sysfs: &str, region: u32, offset: u64) -> vfio::Result<()> {
    const INTX: u32 = vfio::VFIO_PCI_INTX_IRQ_INDEX;
    const MASK: u32 = vfio::VFIO_IRQ_SET_ACTION_MASK | vfio::VFIO_IRQ_SET_DATA_NONE;
    const UNMASK: u32 = vfio::VFIO_IRQ_SET_ACTION_UNMASK | vfio::VFIO_IRQ_SET_DATA_NONE;
    const TRIGGER_BOOL: u32 = vfio::VFIO_IRQ_SET_ACTION_TRIGGER | vfio::VFIO_IRQ_SET_DATA_BOOL;
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    let cfg = vfio::VFIO_PCI_CONFIG_REGION_INDEX;
    let info = dev.irq_info(INTX)?;
    println!("intx_count={}", info.count);
    println!("intx_flags={:#x}", info.flags);
    println!("pin={:#x}", dev.read_reg(cfg, 0x3d, 1)?);
    let r = dev.set_irqs(UNMASK, INTX, 0, 1, &[]);
    println!("unmask_before_enable={}", vfio::outcome(r.map_err(|e| e.err)));
    let efd = irq::EventFd::new()?;
    dev.set_irqs(TRIGGER_FD, INTX, 0, 1, &irq::fds(&[efd.raw()]))?;
    let short = Duration::from_millis(500);
    let level = |v: u64| dev.write_reg(region, offset, 4, v);
    let status = || -> vfio::Result<u64> { Ok((dev.read_reg(cfg, 0x6, 2)? >> 3) & 1) };
    level(1)?;
    println!("fired_on_assert={}", efd.wait(Duration::from_secs(5))?);
    println!("status_asserted={}", status()?);
    level(0)?;
    level(1)?;
    println!("fired_again_while_automasked={}", efd.wait(short)?);
    dev.set_irqs(UNMASK, INTX, 0, 1, &[])?;
    println!("fired_on_unmask_still_asserted={}", efd.wait(short)?);
    level(0)?;
    println!("status_deasserted={}", status()?);
    dev.set_irqs(UNMASK, INTX, 0, 1, &[])?;
    println!("fired_on_unmask_deasserted={}", efd.wait(short)?);
    dev.set_irqs(MASK, INTX, 0, 1, &[])?;
    level(1)?;
    println!("fired_on_assert_while_masked={}", efd.wait(short)?);
    dev.set_irqs(UNMASK, INTX, 0, 1, &[])?;
    println!("fired_on_unmask_pending={}", efd.wait(short)?);
    level(0)?;
    // INTx-disable in the user's COMMAND holds the line back.
    let cmd = dev.read_reg(cfg, 0x4, 2)?;
    dev.write_reg(cfg, 0x4, 2, cmd | 0x400)?;
    dev.set_irqs(UNMASK, INTX, 0, 1, &[])?;
    level(1)?;
    println!("fired_with_intx_disable={}", efd.wait(short)?);
    level(0)?;
    dev.write_reg(cfg, 0x4, 2, cmd)?;
    // The unmask eventfd (what a VMM's KVM resamples): a signal unmasks the line.
    const UNMASK_FD: u32 = vfio::VFIO_IRQ_SET_ACTION_UNMASK | vfio::VFIO_IRQ_SET_DATA_EVENTFD;
    const MASK_FD: u32 = vfio::VFIO_IRQ_SET_ACTION_MASK | vfio::VFIO_IRQ_SET_DATA_EVENTFD;
    let ufd = irq::EventFd::new()?;
    let r = dev.set_irqs(UNMASK_FD, INTX, 0, 1, &irq::fds(&[ufd.raw()]));
    println!("unmask_eventfd={}", vfio::result_name(&r));
    r?;
    let r = dev.set_irqs(MASK_FD, INTX, 0, 1, &irq::fds(&[ufd.raw()]));
    println!("mask_eventfd={}", vfio::result_name(&r));
    dev.set_irqs(UNMASK, INTX, 0, 1, &[])?;
    level(1)?;
    println!("fired_on_assert_with_unmask_eventfd={}", efd.wait(short)?);
    ufd.signal()?;
    println!("fired_on_unmask_eventfd_still_asserted={}", efd.wait(Duration::from_secs(5))?);
    level(0)?;
    ufd.signal()?;
    println!("fired_on_unmask_eventfd_deasserted={}", efd.wait(short)?);
    level(1)?;
    println!("fired_on_assert_after_unmask_eventfd={}", efd.wait(Duration::from_secs(5))?);
    let r = dev.set_irqs(UNMASK_FD, INTX, 0, 1, &irq::fds(&[-1]));
    println!("unmask_eventfd_removed={}", vfio::result_name(&r));
    ufd.signal()?;
    println!("fired_on_removed_unmask_eventfd={}", efd.wait(short)?);
    level(0)?;
    dev.set_irqs(UNMASK, INTX, 0, 1, &[])?;
    dev.set_irqs(TRIGGER_BOOL, INTX, 0, 1, &[1u8])?;
    println!("loopback={}", efd.wait(short)?);
    dev.set_irqs(TRIGGER_NONE, INTX, 0, 0, &[])?;
    level(1)?;
    println!("fired_after_disable={}", efd.wait(short)?);
    level(0)
}

/// The vendor's kernel access to the user's IOVAs (the test vendor: an 8-byte write of an IOVA
/// at `offset` of `region` makes it read 8 bytes there, which it shows at `offset + 8`, and
/// write their complement just after them).
fn dma_probe(sysfs: &str, region: u32, offset: u64) -> vfio::Result<()> {
    const IOVA_A: u64 = 0x7e57_0000;
    const IOVA_B: u64 = 0x5a5a_0000;
    const PATTERN: u64 = 0x1122_3344_5566_7788;
    let ictx = vfio::Iommufd::open()?;
    let (a, b) = (ictx.ioas, ictx.alloc_ioas()?);
    let dev = vfio::cdev_bind(&vfio::cdev_path(sysfs)?, &ictx)?;
    let page = nvme::DmaPage::new().map_err(|err| vfio::Error { what: "mmap a page".into(), err })?;
    ictx.map_in(a, page.va(), 4096, IOVA_A)?;
    ictx.map_in(b, page.va(), 4096, IOVA_B)?;
    page.write(0, &PATTERN.to_le_bytes());
    let probe = |name: &str, iova: u64| -> vfio::Result<()> {
        page.write(8, &[0; 8]);
        let r = dev.write_reg(region, offset, 8, iova);
        println!("{name}={}", vfio::result_name(&r));
        if r.is_ok() {
            println!("{name}_seen={:#x}", dev.read_reg(region, offset + 8, 8)?);
            let mut w = [0u8; 8];
            w.copy_from_slice(&page.bytes(8, 8));
            println!("{name}_wrote={:#x}", u64::from_le_bytes(w));
        }
        Ok(())
    };
    probe("unattached", IOVA_A)?;
    dev.attach_pt(a)?;
    probe("a", IOVA_A)?;
    probe("a_offset", IOVA_A + 0x100)?;
    probe("a_unmapped", IOVA_B)?;
    probe("a_past_end", IOVA_A + 4096 - 4)?;
    dev.attach_pt(b)?;
    probe("b", IOVA_B)?;
    probe("b_old_iova", IOVA_A)?;
    dev.detach()?;
    probe("detached", IOVA_B)
}

/// The first device-specific region (index 9): what its info says, then reads and writes
/// checked against the test vendor's behaviour (each byte `offset % 251` until written).
fn vendor_region(sysfs: &str) -> vfio::Result<()> {
    const INDEX: u32 = 9;
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    println!("num_regions={}", dev.info()?.num_regions);
    let (info, bytes, caps) = dev.region_info_caps(INDEX)?;
    println!("flags={:#x}", info.flags);
    println!("size={}", info.size);
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap_or([0; 4]));
    for (id, at) in caps {
        if id == vfio::VFIO_REGION_INFO_CAP_TYPE && at + 16 <= bytes.len() {
            println!("type={:#x}", u32_at(at + 8));
            println!("subtype={:#x}", u32_at(at + 12));
        }
    }
    let size = info.size as usize;
    let mut all = vec![0u8; size];
    dev.read_region(INDEX, 0, &mut all)?;
    let initial = all.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8);
    println!("initial_pattern={}", if initial { "ok" } else { "bad" });
    let pattern: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
    dev.write_region(INDEX, 0, &pattern)?;
    dev.read_region(INDEX, 0, &mut all)?;
    println!("whole_readback={}", if all == pattern { "ok" } else { "bad" });
    // Across the page boundary, at odd offsets and lengths.
    dev.write_region(INDEX, 4093, &[0xa1, 0xa2, 0xa3, 0xa4, 0xa5])?;
    let mut five = [0u8; 5];
    dev.read_region(INDEX, 4093, &mut five)?;
    println!("across_pages={}", if five == [0xa1, 0xa2, 0xa3, 0xa4, 0xa5] { "ok" } else { "bad" });
    let mut eight = [0u8; 8];
    let r = dev.read_region(INDEX, info.size - 4, &mut eight);
    println!("read_past_end={}", vfio::result_name(&r));
    let r = dev.write_region(INDEX, info.size, &[1]);
    println!("write_at_end={}", vfio::result_name(&r));
    let r = dev.region_info(INDEX + 1);
    println!("next_index={}", vfio::result_name(&r));
    let r = dev.map(INDEX, 0, 4096);
    println!("mmap={}", vfio::result_name(&r));
    Ok(())
}

fn irq_loopback(sysfs: &str) -> vfio::Result<()> {
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    let n = dev.irq_info(MSIX)?.count;
    println!("msix_count={n}");
    if n == 0 {
        return Err(vfio::Error {
            what: "the device has no MSI-X vectors".into(),
            err: std::io::Error::from_raw_os_error(libc::ENODEV),
        });
    }
    let efds = (0..n).map(|_| irq::EventFd::new()).collect::<vfio::Result<Vec<_>>>()?;
    let fds: Vec<i32> = efds.iter().map(irq::EventFd::raw).collect();
    dev.set_irqs(TRIGGER_FD, MSIX, 0, n, &irq::fds(&fds))?;
    println!("proc_interrupts_msix={}", irq::proc_interrupts(HOST_MSIX_NAME)?);

    dev.set_irqs(TRIGGER_NONE, MSIX, n - 1, 1, &[])?;
    let (last, others) = efds.split_last().expect("n > 0");
    println!("loopback_last={}", last.wait(Duration::from_secs(1))?);
    let mut sum = 0;
    for e in others {
        sum += e.take()?;
    }
    println!("loopback_others={sum}");

    dev.set_irqs(TRIGGER_NONE, MSIX, 0, 0, &[])?;
    println!("proc_interrupts_msix_after_disable={}", irq::proc_interrupts(HOST_MSIX_NAME)?);
    Ok(())
}

fn irq_bad_args(sysfs: &str) -> vfio::Result<()> {
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    for (name, errno) in irq::bad_irq_cases(&dev)? {
        println!("{name}={errno}");
    }
    Ok(())
}

fn req_wait(sysfs: &str, secs: u64) -> vfio::Result<()> {
    let (iommufd, dev) = cdev_attach(sysfs)?;
    let efd = irq::EventFd::new()?;
    dev.set_irqs(TRIGGER_FD, vfio::VFIO_PCI_REQ_IRQ_INDEX, 0, 1, &irq::fds(&[efd.raw()]))?;
    println!("held");
    std::io::stdout().flush().map_err(|err| vfio::Error { what: "flush stdout".into(), err })?;
    let fired = efd.wait(Duration::from_secs(secs))? > 0;
    println!("req_fired={}", u32::from(fired));
    // Close at once: the removal waits for it.
    drop(dev);
    drop(iommufd);
    println!("released");
    Ok(())
}

fn same_group(a: &str, b: &str) -> vfio::Result<()> {
    let result = |r: vfio::Result<vfio::Device>| match r {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    {
        let ctx = vfio::Iommufd::open()?;
        let da = vfio::cdev_bind(&vfio::cdev_path(a)?, &ctx)?;
        let db = vfio::cdev_bind(&vfio::cdev_path(b)?, &ctx);
        println!("same_ctx={}", result(db));
        drop(da);
    }
    let ctx1 = vfio::Iommufd::open()?;
    let ctx2 = vfio::Iommufd::open()?;
    let _da = vfio::cdev_bind(&vfio::cdev_path(a)?, &ctx1)?;
    println!("other_ctx={}", result(vfio::cdev_bind(&vfio::cdev_path(b)?, &ctx2)));
    Ok(())
}

fn show_device(dev: &vfio::Device, ops: &[Op], parent: Option<&Path>) -> vfio::Result<()> {
    let info = dev.info()?;
    println!("device_flags={:#x}", info.flags);
    println!("device_is_pci={}", u32::from(info.flags & vfio::VFIO_DEVICE_FLAGS_PCI != 0));
    println!("device_reset={}", u32::from(info.flags & vfio::VFIO_DEVICE_FLAGS_RESET != 0));
    println!("num_regions={}", info.num_regions);
    println!("num_irqs={}", info.num_irqs);
    let mut id = [0u8; 4];
    dev.read_region(vfio::VFIO_PCI_CONFIG_REGION_INDEX, 0, &mut id)?;
    println!("config_vendor={:#06x}", u16::from_le_bytes([id[0], id[1]]));
    println!("config_device={:#06x}", u16::from_le_bytes([id[2], id[3]]));
    for index in 0..info.num_regions.min(vfio::VFIO_PCI_NUM_REGIONS) {
        let r = dev.region_info(index)?;
        println!("region{index}_size={:#x}", r.size);
        println!("region{index}_flags={:#x}", r.flags);
        if let Some(areas) = dev.sparse_areas(index)? {
            let list: Vec<String> = areas.iter().map(|(o, s)| format!("{o:#x}+{s:#x}")).collect();
            println!("region{index}_sparse={}", list.join(","));
        }
    }
    for op in ops {
        run_op(dev, parent, op)?;
    }
    Ok(())
}

/// Flushes stdout, so that a shell waiting for a line (`held`) sees it at once.
fn flush() -> vfio::Result<()> {
    std::io::stdout().flush().map_err(|err| vfio::Error { what: "flush stdout".into(), err })
}

fn invalid(what: String) -> vfio::Error {
    vfio::Error { what, err: std::io::Error::from_raw_os_error(libc::EINVAL) }
}

/// How long a probe child may take (a fault blocked by a reset ends well within it).
const PROBE_WAIT: Duration = Duration::from_secs(20);

fn mmap_probe(sysfs: &str, region: u32, offset: u64, len: usize, at: usize, pre: &[Op], post: &[Op]) -> vfio::Result<()> {
    if !at.is_multiple_of(4) || at + 4 > len {
        return Err(invalid(format!("mmap-probe: offset {at:#x} in a mapping of {len:#x} bytes")));
    }
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    let parent = vfio::parent_function(sysfs).ok();
    for op in pre {
        run_op(&dev, parent.as_deref(), op)?;
    }
    let map = dev.map(region, offset, len)?;
    println!("mmap=ok");
    // The parent's own access: its page-table entry is what a child inherits unless the
    // mapping is revoked.
    println!("probe_before={:#x}", map.read_u32(at));
    for op in post {
        run_op(&dev, parent.as_deref(), op)?;
    }
    flush()?;
    let p = probe::in_child(&[map.addr(at)], PROBE_WAIT)?;
    println!("probe_after={}", p.outcome);
    if let Some(v) = p.values.first() {
        println!("probe_value_after={v:#x}");
    }
    let (r, v) = probe::pread_u32(&dev, region, offset + at as u64);
    println!("pread_after={r}");
    if let Some(v) = v {
        println!("pread_value_after={v:#x}");
    }
    drop(map);
    Ok(())
}

fn reset_race(sysfs: &str, kind: &str, n: usize) -> vfio::Result<()> {
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    let kind = match kind {
        "flr" => {
            let exp = find_cap(&dev, 0x10)?;
            if exp == 0 {
                return Err(vfio::Error {
                    what: "reset-race flr: no PCIe capability in the config region".into(),
                    err: std::io::Error::from_raw_os_error(libc::ENODEV),
                });
            }
            probe::ResetKind::Flr { devctl: exp + 8 }
        }
        _ => probe::ResetKind::Ioctl,
    };
    // BAR0's first page; the register at 0 (NVMe CAP, igbvf CTRL) reads without side effect.
    let map = dev.map(0, 0, 4096)?;
    println!("value_before={:#x}", map.read_u32(0));
    let r = probe::reset_race(&dev, &map, 0, kind, n)?;
    println!("resets={}", r.resets);
    println!("reset_errors={}", r.reset_errors.join(","));
    for (i, s) in r.spans.iter().enumerate() {
        println!("reset_{i}={}ms,held={}ms@+{}ms,reads={}", s.ms, s.held_ms, s.held_from_ms, s.reads);
    }
    let flr_long: Vec<_> = r.spans.iter().filter(|s| s.ms >= probe::FLR_WAIT.as_millis()).collect();
    println!("resets_flr_long={}", flr_long.len());
    println!(
        "resets_not_held={}",
        flr_long.iter().filter(|s| s.held_ms < probe::HELD.as_millis()).count()
    );
    println!("reset_ms_max={}", r.spans.iter().map(|s| s.ms).max().unwrap_or(0));
    println!("reads_total={}", r.reads_total);
    println!("max_read_ms={}", r.max_read_us / 1000);
    println!("value_after={:#x}", map.read_u32(0));
    Ok(())
}

fn whole_bar_mmap(sysfs: &str, region: u32) -> vfio::Result<()> {
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    let (info, _, caps) = dev.region_info_caps(region)?;
    println!("size={:#x}", info.size);
    println!("flags={:#x}", info.flags);
    let ids: Vec<String> = caps.iter().map(|(id, _)| id.to_string()).collect();
    println!("caps={}", ids.join(","));
    let len = info.size as usize;
    let map = match dev.map(region, 0, len) {
        Ok(m) => m,
        Err(e) => {
            println!("mmap={}", vfio::errno_name(&e.err));
            return Ok(());
        }
    };
    println!("mmap=ok");
    let pages = len.div_ceil(4096);
    println!("pages={pages}");
    flush()?;
    let addrs: Vec<usize> = (0..pages).map(|p| map.addr(p * 4096)).collect();
    let p = probe::in_child(&addrs, PROBE_WAIT)?;
    println!("probe={}", p.outcome);
    println!("read_ok={}", p.values.len());
    let vals: Vec<String> = p.values.iter().map(|v| format!("{v:#x}")).collect();
    println!("page_dwords={}", vals.join(","));
    Ok(())
}

fn revoke_wait(sysfs: &str, secs: u64) -> vfio::Result<()> {
    let (iommufd, dev) = cdev_attach(sysfs)?;
    let map = dev.map(0, 0, 4096)?;
    println!("value_before={:#x}", map.read_u32(0));
    let efd = irq::EventFd::new()?;
    dev.set_irqs(TRIGGER_FD, vfio::VFIO_PCI_REQ_IRQ_INDEX, 0, 1, &irq::fds(&[efd.raw()]))?;
    println!("held");
    flush()?;
    let fired = efd.wait(Duration::from_secs(secs))? > 0;
    println!("req_fired={}", u32::from(fired));
    flush()?;
    // The function is going away: the mapping must be revoked, BAR access refused.
    let p = probe::in_child(&[map.addr(0)], PROBE_WAIT)?;
    println!("probe_after_req={}", p.outcome);
    let (r, _) = probe::pread_u32(&dev, 0, 0);
    println!("pread_after_req={r}");
    // Close everything (the mapping holds the device file too): the removal waits for it.
    println!("closing");
    flush()?;
    drop(map);
    drop(dev);
    drop(iommufd);
    println!("released");
    Ok(())
}

fn err_wait(sysfs: &str, secs: u64) -> vfio::Result<()> {
    let (iommufd, dev) = cdev_attach(sysfs)?;
    let index = vfio::VFIO_PCI_ERR_IRQ_INDEX;
    println!("err_count={}", dev.irq_info(index)?.count);
    let efd = irq::EventFd::new()?;
    dev.set_irqs(TRIGGER_FD, index, 0, 1, &irq::fds(&[efd.raw()]))?;
    println!("held");
    flush()?;
    let mut n = efd.wait(Duration::from_secs(secs))?;
    if n > 0 {
        // A second signal for the same error would show up here.
        n += efd.wait(Duration::from_secs(2))?;
    }
    println!("err_fired={n}");
    drop(dev);
    drop(iommufd);
    println!("released");
    Ok(())
}

/// `DDDD:BB:DD.F` -> (domain, bus, device, function).
fn parse_bdf(s: &str) -> Option<(u32, u8, u8, u8)> {
    let (dom, rest) = s.split_once(':')?;
    let (bus, rest) = rest.split_once(':')?;
    let (dev, func) = rest.split_once('.')?;
    Some((
        u32::from_str_radix(dom, 16).ok()?,
        u8::from_str_radix(bus, 16).ok()?,
        u8::from_str_radix(dev, 16).ok()?,
        u8::from_str_radix(func, 16).ok()?,
    ))
}

/// Writes a `struct aer_error_inj` (drivers/pci/pcie/aer_inject.c) to /dev/aer_inject.
fn aer_inject(bdf: &str, uncor: u32, cor: u32) -> vfio::Result<()> {
    let Some((domain, bus, dev, func)) = parse_bdf(bdf) else {
        return Err(invalid(format!("aer-inject: BDF {bdf:?} (want DDDD:BB:DD.F)")));
    };
    // u8 bus, dev, fn; (pad); u32 uncor_status, cor_status, header_log0..3, domain: 32 bytes.
    let mut b = vec![bus, dev, func, 0];
    for v in [uncor, cor, 0, 0, 0, 0, domain] {
        b.extend_from_slice(&v.to_ne_bytes());
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/aer_inject")
        .map_err(|err| vfio::Error { what: "open /dev/aer_inject".into(), err })?;
    f.write_all(&b).map_err(|err| vfio::Error {
        what: format!("write /dev/aer_inject ({bdf} uncor {uncor:#x} cor {cor:#x})"),
        err,
    })?;
    println!("aer_inject=ok");
    Ok(())
}

fn config_caps(sysfs: &str) -> vfio::Result<()> {
    let hw = vfio::HwConfig::of_dir(&vfio::parent_function(sysfs)?);
    let (hstd, hext) = (config::std_caps(&hw)?, config::ext_caps(&hw)?);
    let (_iommufd, dev) = cdev_attach(sysfs)?;
    let (ustd, uext) = (config::std_caps(&dev)?, config::ext_caps(&dev)?);
    println!("hw_caps={}", config::fmt_caps(&hstd, false));
    println!("hw_ecaps={}", config::fmt_caps(&hext, true));
    println!("user_caps={}", config::fmt_caps(&ustd, false));
    println!("user_ecaps={}", config::fmt_caps(&config::ext_placeholders(&uext), true));
    println!("user_ecap_placeholders={}", uext.iter().filter(|c| c.id == 0).count());
    let estd: Vec<_> = hstd.iter().copied().filter(|c| !config::std_hidden(c.id)).collect();
    let eext: Vec<_> = hext.iter().copied().filter(|c| !config::ext_hidden(c.id)).collect();
    println!("expected_user_caps={}", config::fmt_caps(&estd, false));
    println!("expected_user_ecaps={}", config::fmt_caps(&eext, true));
    let hstd_hidden: Vec<_> = hstd.iter().copied().filter(|c| config::std_hidden(c.id)).collect();
    let hext_hidden: Vec<_> = hext.iter().copied().filter(|c| config::ext_hidden(c.id)).collect();
    println!("hidden_caps={}", config::fmt_caps(&hstd_hidden, false));
    println!("hidden_ecaps={}", config::fmt_caps(&hext_hidden, true));
    let ro: Vec<String> = config::ro_caps(&hw, &hstd, false)?
        .iter()
        .map(|(c, l)| format!("{:#04x}@{:#x}+{l}", c.id, c.off))
        .chain(config::ro_caps(&hw, &hext, true)?.iter().map(|(c, l)| format!("{:#06x}@{:#x}+{l}", c.id, c.off)))
        .collect();
    println!("ro_caps={}", ro.join(" "));
    Ok(())
}

/// One register probed by `config-ro`: which range, where, how wide, which bits to flip.
struct RoUnit {
    range: usize,
    off: u64,
    len: usize,
    xor: u64,
}

fn config_ro(sysfs: &str) -> vfio::Result<()> {
    let hw = vfio::HwConfig::of_dir(&vfio::parent_function(sysfs)?);
    let (hstd, hext) = (config::std_caps(&hw)?, config::ext_caps(&hw)?);
    // (name, extended?) of each range, and its registers past the header.
    let mut ranges: Vec<(String, bool)> = Vec::new();
    let mut units = Vec::new();
    for (ext, caps) in [(false, &hstd), (true, &hext)] {
        for (c, len) in config::ro_caps(&hw, caps, ext)? {
            let name = if ext { format!("ecap{:#06x}", c.id) } else { format!("cap{:#04x}", c.id) };
            ranges.push((format!("{name}@{:#x}+{len}", c.off), ext));
            let mut o = c.off + 4;
            while o < c.off + len {
                let l = if c.off + len - o >= 4 { 4 } else { 2 };
                units.push(RoUnit { range: ranges.len() - 1, off: o, len: l, xor: (1u64 << (8 * l)) - 1 });
                o += l as u64;
            }
        }
    }
    // PCIe Link Control: read-only for the user. Flip ASPM Control, Common Clock
    // Configuration and Extended Synch only (no retrain, no link disable).
    if let Some(exp) = hstd.iter().find(|c| c.id == 0x10) {
        ranges.push((format!("lnkctl@{:#x}+2", exp.off + 0x10), false));
        units.push(RoUnit { range: ranges.len() - 1, off: exp.off + 0x10, len: 2, xor: 0x00c3 });
    }
    let names: Vec<&str> = ranges.iter().map(|(n, _)| n.as_str()).collect();
    println!("ro_ranges={}", names.join(" "));
    println!("ro_units={}", units.len());

    // Which of them the hardware lets a direct write change (restored at once): a write that
    // reached the hardware through the mdev would show there.
    let mut writable = vec![false; ranges.len()];
    for u in &units {
        let orig = hw.read(u.off, u.len)?;
        hw.write(u.off, u.len, orig ^ u.xor)?;
        let back = hw.read(u.off, u.len)?;
        hw.write(u.off, u.len, orig)?;
        if back != orig {
            writable[u.range] = true;
        }
    }
    let w: Vec<&str> = ranges.iter().zip(&writable).filter(|(_, w)| **w).map(|((n, _), _)| n.as_str()).collect();
    println!("ro_hw_writable={}", w.join(" "));

    let (_iommufd, dev) = cdev_attach(sysfs)?;
    let cfg = vfio::VFIO_PCI_CONFIG_REGION_INDEX;
    let (mut changed, mut errors) = (Vec::new(), Vec::new());
    let mut exercised = vec![false; ranges.len()];
    for u in &units {
        let before = hw.read(u.off, u.len)?;
        match dev.write_reg(cfg, u.off, u.len, before ^ u.xor) {
            Ok(()) => exercised[u.range] = true,
            Err(e) => errors.push(format!("{:#x}:{}", u.off, vfio::errno_name(&e.err))),
        }
        let after = hw.read(u.off, u.len)?;
        if after != before {
            changed.push(format!("{:#x}:{before:#x}->{after:#x}", u.off));
            hw.write(u.off, u.len, before)?;
        }
    }
    let ex: Vec<&str> = ranges.iter().zip(&exercised).filter(|(_, e)| **e).map(|((n, _), _)| n.as_str()).collect();
    println!("ro_exercised={}", ex.join(" "));
    let ecaps = ranges.iter().zip(&exercised).filter(|((_, ext), e)| *ext && **e).count();
    println!("ro_ecaps_exercised={ecaps}");
    println!("ro_changed={}", changed.join(" "));
    println!("ro_write_errors={}", errors.join(" "));
    Ok(())
}

fn print_identify(prefix: &str, ctrl: &nvme::Nvme, c: &vfio::Result<nvme::Completion>) {
    match c {
        Ok(c) => {
            println!("{prefix}status={:#x}", c.status);
            let id = ctrl.data.bytes(0, 64);
            println!("{prefix}vid={:#06x}", u16::from_le_bytes([id[0], id[1]]));
            println!("{prefix}sn={}", nvme::ascii(&id[4..24]));
            println!("{prefix}mn={}", nvme::ascii(&id[24..64]));
        }
        Err(e) => println!("{prefix}status={}", vfio::errno_name(&e.err)),
    }
}

fn group_iommufd_identify(sysfs: &str, container: &str) -> vfio::Result<()> {
    let group = vfio::sysfs_group(sysfs)?;
    let name = Path::new(sysfs).file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let g = vfio::CompatGroup::open(group, container)?;
    println!("group={group}");
    println!("group_viable={}", u32::from(g.group_flags & vfio::VFIO_GROUP_FLAGS_VIABLE != 0));
    println!("type1v2={}", g.type1v2);
    let dev = g.device(&name)?;
    println!("device_fd=ok");
    let mut ctrl = nvme::Nvme::init(&dev, &g)?;
    let c = ctrl.identify_controller(1, Duration::from_secs(30));
    print_identify("identify_", &ctrl, &c);
    c?;
    ctrl.shutdown()?;
    for iova in [nvme::IOVA_SQ, nvme::IOVA_CQ, nvme::IOVA_DATA] {
        g.unmap_dma(iova, 4096)?;
    }
    println!("unmap_dma=ok");
    Ok(())
}

fn ioas_swap(sysfs: &str) -> vfio::Result<()> {
    let ictx = vfio::Iommufd::open()?;
    let (a, b, c) = (ictx.ioas, ictx.alloc_ioas()?, ictx.alloc_ioas()?);
    let dev = vfio::cdev_bind(&vfio::cdev_path(sysfs)?, &ictx)?;
    dev.attach_pt(a)?;
    let mut ctrl = nvme::Nvme::new(&dev)?;
    ctrl.map(&ictx.ioas(a))?;
    ctrl.enable()?;
    let r = ctrl.identify_controller(1, Duration::from_secs(30));
    print_identify("a_", &ctrl, &r);
    r?;

    // Detached: the device's DMA is blocked; the command cannot even be fetched.
    let d = dev.detach();
    println!("detach={}", vfio::result_name(&d));
    d?;
    ctrl.data.write(0, &[0xa5; 64]);
    match ctrl.identify_controller(2, Duration::from_secs(5)) {
        Ok(c) => println!("detached_status={:#x}", c.status),
        Err(e) => println!("detached_status={}", vfio::errno_name(&e.err)),
    }
    let untouched = ctrl.data.bytes(0, 64).iter().all(|&x| x == 0xa5);
    println!("detached_buffer_untouched={}", u32::from(untouched));

    // Attached again, to B with the same pages. The failed fetch may have left the
    // controller in a fatal state: reset the function and restart it.
    ctrl.map(&ictx.ioas(b))?;
    let r = dev.attach_pt(b);
    println!("attach_b={}", vfio::result_name(&r));
    r?;
    dev.reset()?;
    ctrl.enable()?;
    let r = ctrl.identify_controller(3, Duration::from_secs(30));
    print_identify("b_", &ctrl, &r);
    r?;

    // Replaced by C while attached to B: C maps the same queues but another data page.
    let cdata = nvme::DmaPage::new().map_err(|err| vfio::Error { what: "mmap C's data page".into(), err })?;
    let (sq, cq) = ctrl.queue_vas();
    ictx.map_in(c, sq, 4096, nvme::IOVA_SQ)?;
    ictx.map_in(c, cq, 4096, nvme::IOVA_CQ)?;
    ictx.map_in(c, cdata.va(), 4096, nvme::IOVA_DATA)?;
    ctrl.data.write(0, &[0xa5; 64]);
    cdata.write(0, &[0x5a; 64]);
    let r = dev.attach_pt(c);
    println!("attach_c={}", vfio::result_name(&r));
    r?;
    match ctrl.identify_controller(4, Duration::from_secs(30)) {
        Ok(cpl) => {
            println!("c_status={:#x}", cpl.status);
            let id = cdata.bytes(0, 64);
            println!("c_vid={:#06x}", u16::from_le_bytes([id[0], id[1]]));
            println!("c_sn={}", nvme::ascii(&id[4..24]));
        }
        Err(e) => println!("c_status={}", vfio::errno_name(&e.err)),
    }
    let untouched = ctrl.data.bytes(0, 64).iter().all(|&x| x == 0xa5);
    println!("c_b_page_untouched={}", u32::from(untouched));
    ctrl.shutdown()
}

fn usage() -> ExitCode {
    eprintln!("usage: mpw-vfio-client group-open <group> <device> [read:R:OFF:LEN | write:R:OFF:LEN:VAL]...");
    eprintln!("       mpw-vfio-client cdev-open <sysfs dev> [OP]...");
    eprintln!("       mpw-vfio-client nvme-identify <sysfs dev>");
    eprintln!("       mpw-vfio-client igbvf-ping <sysfs dev> <our IPv4> <peer IPv4> <count> [hold <seconds>]");
    eprintln!("       mpw-vfio-client hold <sysfs dev> <seconds>");
    eprintln!("       mpw-vfio-client bad-args <sysfs dev>");
    eprintln!("       mpw-vfio-client same-group <sysfs dev A> <sysfs dev B>");
    eprintln!("       mpw-vfio-client irq-info <sysfs dev>");
    eprintln!("       mpw-vfio-client nvme-irq <sysfs dev>");
    eprintln!("       mpw-vfio-client irq-loopback <sysfs dev>");
    eprintln!("       mpw-vfio-client intx-probe <sysfs dev> <region> <offset>");
    eprintln!("       mpw-vfio-client dma-probe <sysfs dev> <region> <offset>");
    eprintln!("       mpw-vfio-client vendor-region <sysfs dev>");
    eprintln!("       mpw-vfio-client irq-trigger <sysfs dev> msi|msix [write:R:OFF:LEN:VAL]...");
    eprintln!("       mpw-vfio-client irq-bad-args <sysfs dev>");
    eprintln!("       mpw-vfio-client req-wait <sysfs dev> <seconds>");
    eprintln!("       mpw-vfio-client mmap-probe <sysfs dev> <region> <offset> <len> <at> [OP...] [then OP...]");
    eprintln!("       mpw-vfio-client reset-race <sysfs dev> ioctl|flr <n>");
    eprintln!("       mpw-vfio-client whole-bar-mmap <sysfs dev> <region>");
    eprintln!("       mpw-vfio-client revoke-wait <sysfs dev> <seconds>");
    eprintln!("       mpw-vfio-client err-wait <sysfs dev> <seconds>");
    eprintln!("       mpw-vfio-client aer-inject <DDDD:BB:DD.F> <uncor_status> [cor_status]");
    eprintln!("       mpw-vfio-client config-caps <sysfs dev>");
    eprintln!("       mpw-vfio-client config-ro <sysfs dev>");
    eprintln!("       mpw-vfio-client group-iommufd-identify <sysfs dev> [container node]");
    eprintln!("       mpw-vfio-client ioas-swap <sysfs dev>");
    eprintln!("       mpw-vfio-client fuzz <sysfs dev> <operations> <seed>");
    eprintln!("       mpw-vfio-client bench-mmio <sysfs dev> <region> <read off> <write off> <iters>");
    eprintln!("       mpw-vfio-client bench-rw <sysfs dev> <region> <read off> <write off> <iters>");
    eprintln!("       mpw-vfio-client bench-nvme-io <sysfs dev> <queue depth> <count>");
    eprintln!("       mpw-vfio-client open-ready-vfio <DDDD:BB:DD.F>");
    eprintln!("       mpw-vfio-client open-ready-mdev <parent DDDD:BB:DD.F> <mdev type> <uuid>");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["group-open", group, device, rest @ ..] => {
            let Ok(g) = group.parse() else { return usage() };
            let Some(ops) = parse_ops(rest) else {
                return usage();
            };
            group_open(g, device, &ops)
        }
        ["cdev-open", sysfs, rest @ ..] => {
            let Some(ops) = parse_ops(rest) else {
                return usage();
            };
            cdev_open(sysfs, &ops)
        }
        ["nvme-identify", sysfs] => nvme_identify(sysfs),
        ["igbvf-ping", sysfs, ip, peer, count, rest @ ..] => {
            let hold = match rest {
                [] => None,
                ["hold", s] => match s.parse() {
                    Ok(s) => Some(Duration::from_secs(s)),
                    Err(_) => return usage(),
                },
                _ => return usage(),
            };
            match (ip.parse(), peer.parse(), count.parse()) {
                (Ok(ip), Ok(peer), Ok(count)) => igbvf_ping(sysfs, ip, peer, count, hold),
                _ => return usage(),
            }
        }
        ["qtest-nvme", devfn, qemu_args @ ..] => {
            let Some(devfn) = parse_num(devfn).and_then(|d| u8::try_from(d).ok()) else { return usage() };
            let qemu = std::env::var("MPW_QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into());
            let args: Vec<String> = qemu_args.iter().map(|a| a.to_string()).collect();
            guest_nvme::run(&qemu, devfn, &args)
        }
        ["qtest-nvme-listen", sock, secs, devfn, rest @ ..] => {
            let devfn = match *devfn {
                "-" => None,
                d => match parse_num(d).and_then(|d| u8::try_from(d).ok()) {
                    Some(d) => Some(d),
                    None => return usage(),
                },
            };
            let Ok(secs) = secs.parse() else { return usage() };
            let eject = match rest {
                [] => None,
                ["eject", s] => match s.parse() {
                    Ok(s) => Some(Duration::from_secs(s)),
                    Err(_) => return usage(),
                },
                _ => return usage(),
            };
            guest_nvme::run_listening(sock, Duration::from_secs(secs), devfn, eject)
        }
        ["same-group", a, b] => same_group(a, b),
        ["hold", sysfs, secs] => match secs.parse() {
            Ok(s) => hold(sysfs, s),
            Err(_) => return usage(),
        },
        ["bad-args", sysfs] => bad_args(sysfs),
        ["irq-info", sysfs] => irq_info(sysfs),
        ["nvme-irq", sysfs] => nvme_irq(sysfs),
        ["irq-loopback", sysfs] => irq_loopback(sysfs),
        ["irq-bad-args", sysfs] => irq_bad_args(sysfs),
        ["irq-trigger", sysfs, kind @ ("msi" | "msix"), rest @ ..] => {
            let Some(ops) = parse_ops(rest) else {
                return usage();
            };
            irq_trigger(sysfs, kind, &ops)
        }
        ["req-wait", sysfs, secs] => match secs.parse() {
            Ok(s) => req_wait(sysfs, s),
            Err(_) => return usage(),
        },
        ["mmap-probe", sysfs, region, offset, len, at, rest @ ..] => {
            let nums = (parse_num(region), parse_num(offset), parse_num(len), parse_num(at));
            let (Some(region), Some(offset), Some(len), Some(at)) = nums else { return usage() };
            let (pre, post) = match rest.iter().position(|a| *a == "then") {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (&rest[..0], rest),
            };
            let (Some(pre), Some(post)) = (parse_ops(pre), parse_ops(post)) else { return usage() };
            let (Ok(region), Ok(len), Ok(at)) = (u32::try_from(region), usize::try_from(len), usize::try_from(at)) else {
                return usage();
            };
            mmap_probe(sysfs, region, offset, len, at, &pre, &post)
        }
        ["intx-probe", sysfs, region, offset] => match (parse_num(region), parse_num(offset)) {
            (Some(r), Some(o)) => intx_probe(sysfs, r as u32, o),
            _ => return usage(),
        },
        ["vendor-region", sysfs] => vendor_region(sysfs),
        ["dma-probe", sysfs, region, offset] => match (parse_num(region), parse_num(offset)) {
            (Some(r), Some(o)) => dma_probe(sysfs, r as u32, o),
            _ => return usage(),
        },
        ["reset-race", sysfs, kind @ ("ioctl" | "flr"), n] => match n.parse() {
            Ok(n) => reset_race(sysfs, kind, n),
            Err(_) => return usage(),
        },
        ["whole-bar-mmap", sysfs, region] => match parse_num(region).and_then(|r| u32::try_from(r).ok()) {
            Some(r) => whole_bar_mmap(sysfs, r),
            None => return usage(),
        },
        ["revoke-wait", sysfs, secs] => match secs.parse() {
            Ok(s) => revoke_wait(sysfs, s),
            Err(_) => return usage(),
        },
        ["err-wait", sysfs, secs] => match secs.parse() {
            Ok(s) => err_wait(sysfs, s),
            Err(_) => return usage(),
        },
        ["aer-inject", bdf, uncor, rest @ ..] if rest.len() <= 1 => {
            let hex = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok();
            let cor = match rest.first() {
                Some(c) => hex(c),
                None => Some(0),
            };
            let (Some(uncor), Some(cor)) = (hex(uncor), cor) else { return usage() };
            aer_inject(bdf, uncor, cor)
        }
        ["config-caps", sysfs] => config_caps(sysfs),
        ["config-ro", sysfs] => config_ro(sysfs),
        ["group-iommufd-identify", sysfs] => group_iommufd_identify(sysfs, "/dev/iommu"),
        ["group-iommufd-identify", sysfs, container] => group_iommufd_identify(sysfs, container),
        ["ioas-swap", sysfs] => ioas_swap(sysfs),
        ["fuzz", sysfs, ops, seed] => match (ops.parse(), parse_num(seed)) {
            (Ok(ops), Some(seed)) => fuzz::fuzz(sysfs, ops, seed),
            _ => return usage(),
        },
        ["bench-mmio" | "bench-rw", sysfs, region, read_off, write_off, iters] => {
            let nums = (parse_num(region).and_then(|r| u32::try_from(r).ok()), parse_num(read_off), parse_num(write_off), parse_num(iters));
            let (Some(region), Some(read_off), Some(write_off), Some(iters)) = nums else { return usage() };
            if args[0] == "bench-mmio" {
                bench::mmio(sysfs, region, read_off, write_off, iters)
            } else {
                bench::rw(sysfs, region, read_off, write_off, iters)
            }
        }
        ["bench-nvme-io", sysfs, qd, count] => match (parse_num(qd), parse_num(count)) {
            (Some(qd), Some(count)) => bench::nvme_io(sysfs, qd, count),
            _ => return usage(),
        },
        ["open-ready-vfio", bdf] => bench::open_ready_vfio(bdf),
        ["open-ready-mdev", bdf, mdev_type, uuid] => bench::open_ready_mdev(bdf, mdev_type, uuid),
        _ => return usage(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpw-vfio-client: {e}");
            ExitCode::FAILURE
        }
    }
}
