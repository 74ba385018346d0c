// SPDX-License-Identifier: GPL-2.0

//! A QEMU driven through its qtest protocol: the test is the guest's firmware and driver.
//!
//! Nested TCG cannot boot a Linux guest in useful time, so the tests start QEMU with its vCPUs
//! stopped (`-S`) and a qtest socket, and do what guest code would do through the protocol
//! (QEMU's `system/qtest.c`): port I/O (`inl`/`outl`, here 0xcf8/0xcfc config cycles), memory
//! reads and writes as the guest's CPU sees them (`readl`, `writeq`, `read`, `write`,
//! `memset`: guest RAM, or a device's BAR where the guest mapped it). Devices run in QEMU's
//! main loop meanwhile: a vfio-pci device's BAR accesses, DMA into guest RAM and interrupts
//! are QEMU's real paths.
//!
//! QEMU connects to the socket (`-qtest unix:PATH`, as libqtest does), so this listens
//! first: for a QEMU it starts itself, or for one another program starts (libvirt, with the
//! qtest option in the domain's `<qemu:commandline>`). Every command is answered by a line
//! `OK [value]` (or `FAIL ...`, `ERR ...`).

use crate::vfio::{Error, Result};
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn proto(what: String) -> Error {
    Error { what, err: io::Error::from_raw_os_error(libc::EPROTO) }
}

/// A running QEMU and its qtest connection; a QEMU this started is killed on drop.
pub struct Qtest {
    /// The QEMU this started (none when another program, libvirt, started it).
    child: Option<Child>,
    pid: u32,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    sock: String,
    /// Commands sent, for the statistics line of the callers.
    pub commands: u64,
}

fn listen(sock: &str) -> Result<UnixListener> {
    let _ = std::fs::remove_file(sock);
    let listener = UnixListener::bind(sock).map_err(|err| Error { what: format!("listening on {sock}"), err })?;
    listener.set_nonblocking(true).map_err(|err| Error { what: "set_nonblocking".into(), err })?;
    Ok(listener)
}

/// The process ID of the program at the other end of a Unix socket (SO_PEERCRED).
fn peer_pid(stream: &UnixStream) -> Result<u32> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes passed, for the whole call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(Error { what: "SO_PEERCRED of the qtest connection".into(), err: io::Error::last_os_error() });
    }
    u32::try_from(cred.pid).map_err(|_| proto(format!("qtest peer pid {}", cred.pid)))
}

impl Qtest {
    /// Starts `qemu` (vCPUs stopped, no firmware run) with `args` after the qtest options, and
    /// waits up to `wait` for it to connect.
    pub fn start(qemu: &str, args: &[String], wait: Duration) -> Result<Self> {
        let sock = format!("/tmp/mpw-qtest-{}.sock", std::process::id());
        let listener = listen(&sock)?;
        let child = Command::new(qemu)
            .args(["-S", "-display", "none", "-nodefaults", "-qtest-log", "/dev/null", "-qtest"])
            .arg(format!("unix:{sock}"))
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|err| Error { what: format!("starting {qemu}"), err })?;
        Self::accept(listener, sock, Some(child), wait)
    }

    /// Listens on `sock` (mode 0666: the QEMU may run as another user) for a QEMU that another
    /// program starts with `-qtest unix:<sock>` (libvirt, through `<qemu:commandline>`), and
    /// waits up to `wait` for it to connect.
    pub fn listen(sock: &str, wait: Duration) -> Result<Self> {
        let listener = listen(sock)?;
        std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o666))
            .map_err(|err| Error { what: format!("chmod {sock}"), err })?;
        println!("qtest_listening={sock}");
        // The caller starts QEMU when it sees the line above.
        let _ = io::stdout().flush();
        Self::accept(listener, sock.to_string(), None, wait)
    }

    fn accept(listener: UnixListener, sock: String, mut child: Option<Child>, wait: Duration) -> Result<Self> {
        let stop = |child: &mut Option<Child>| {
            if let Some(c) = child.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = std::fs::remove_file(&sock);
        };
        let deadline = Instant::now() + wait;
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => {
                    stop(&mut child);
                    return Err(Error { what: "accepting the qtest connection".into(), err });
                }
            }
            if let Some(Ok(Some(status))) = child.as_mut().map(|c| c.try_wait()) {
                stop(&mut child);
                return Err(proto(format!("QEMU exited before connecting ({status})")));
            }
            if Instant::now() > deadline {
                stop(&mut child);
                return Err(Error {
                    what: format!("QEMU did not connect in {} s", wait.as_secs()),
                    err: io::Error::from_raw_os_error(libc::ETIMEDOUT),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let io_err = |err| Error { what: "qtest socket".into(), err };
        let pid = match &child {
            Some(c) => c.id(),
            None => peer_pid(&stream)?,
        };
        stream.set_nonblocking(false).map_err(io_err)?;
        // Generous: a vfio-pci device's first access may wait for its reset.
        stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(io_err)?;
        let writer = stream.try_clone().map_err(io_err)?;
        Ok(Self { child, pid, reader: BufReader::new(stream), writer, sock, commands: 0 })
    }

    /// QEMU's process ID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `cmd` and returns what follows `OK` in the answer.
    pub fn cmd(&mut self, cmd: &str) -> Result<String> {
        self.commands += 1;
        let io_err = |err| Error { what: format!("qtest `{cmd}`"), err };
        self.writer.write_all(format!("{cmd}\n").as_bytes()).map_err(io_err)?;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).map_err(io_err)? == 0 {
                return Err(proto(format!("qtest `{cmd}`: QEMU closed the connection")));
            }
            let line = line.trim_end();
            // Interrupt notifications (only with irq_intercept_*) are not answers.
            if line.starts_with("IRQ ") {
                continue;
            }
            return match line.strip_prefix("OK") {
                Some(rest) => Ok(rest.trim().to_string()),
                None => Err(proto(format!("qtest `{cmd}`: {line}"))),
            };
        }
    }

    fn value(&mut self, cmd: &str) -> Result<u64> {
        let v = self.cmd(cmd)?;
        let hex = v.strip_prefix("0x").ok_or_else(|| proto(format!("qtest `{cmd}`: answer {v}")))?;
        u64::from_str_radix(hex, 16).map_err(|_| proto(format!("qtest `{cmd}`: answer {v}")))
    }

    pub fn outl(&mut self, port: u16, v: u32) -> Result<()> {
        self.cmd(&format!("outl {port:#x} {v:#x}")).map(drop)
    }

    pub fn outw(&mut self, port: u16, v: u16) -> Result<()> {
        self.cmd(&format!("outw {port:#x} {v:#x}")).map(drop)
    }

    pub fn inl(&mut self, port: u16) -> Result<u32> {
        Ok(self.value(&format!("inl {port:#x}"))? as u32)
    }

    pub fn inw(&mut self, port: u16) -> Result<u16> {
        Ok(self.value(&format!("inw {port:#x}"))? as u16)
    }

    pub fn readl(&mut self, addr: u64) -> Result<u32> {
        Ok(self.value(&format!("readl {addr:#x}"))? as u32)
    }

    pub fn readq(&mut self, addr: u64) -> Result<u64> {
        self.value(&format!("readq {addr:#x}"))
    }

    pub fn writel(&mut self, addr: u64, v: u32) -> Result<()> {
        self.cmd(&format!("writel {addr:#x} {v:#x}")).map(drop)
    }

    pub fn writeq(&mut self, addr: u64, v: u64) -> Result<()> {
        self.cmd(&format!("writeq {addr:#x} {v:#x}")).map(drop)
    }

    /// Reads `len` bytes of guest memory at `addr`.
    pub fn read(&mut self, addr: u64, len: usize) -> Result<Vec<u8>> {
        let v = self.cmd(&format!("read {addr:#x} {len:#x}"))?;
        let hex = v.strip_prefix("0x").unwrap_or(&v);
        if hex.len() != 2 * len {
            return Err(proto(format!("qtest read of {len} bytes: {} hex digits", hex.len())));
        }
        (0..len)
            .map(|i| {
                u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                    .map_err(|_| proto("qtest read: not hex".into()))
            })
            .collect()
    }

    /// Writes `data` to guest memory at `addr`.
    pub fn write(&mut self, addr: u64, data: &[u8]) -> Result<()> {
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        self.cmd(&format!("write {addr:#x} {:#x} 0x{hex}", data.len())).map(drop)
    }

    /// Fills `len` bytes of guest memory at `addr` with `byte`.
    pub fn memset(&mut self, addr: u64, len: usize, byte: u8) -> Result<()> {
        self.cmd(&format!("memset {addr:#x} {len:#x} {byte:#x}")).map(drop)
    }
}

impl Drop for Qtest {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.sock);
    }
}

/// Config space of bus 0 through the legacy 0xcf8/0xcfc mechanism, as firmware reaches it.
pub struct PciConfig<'a> {
    pub qt: &'a mut Qtest,
    /// Device and function on bus 0: `dev << 3 | fn`.
    pub devfn: u8,
}

impl PciConfig<'_> {
    fn select(&mut self, off: u8) -> Result<()> {
        let addr = 0x8000_0000 | u32::from(self.devfn) << 8 | u32::from(off & 0xfc);
        self.qt.outl(0xcf8, addr)
    }

    pub fn read32(&mut self, off: u8) -> Result<u32> {
        self.select(off)?;
        self.qt.inl(0xcfc)
    }

    pub fn read16(&mut self, off: u8) -> Result<u16> {
        self.select(off)?;
        self.qt.inw(0xcfc + u16::from(off & 2))
    }

    pub fn read8(&mut self, off: u8) -> Result<u8> {
        Ok((self.read32(off)? >> (8 * (off & 3))) as u8)
    }

    pub fn write32(&mut self, off: u8, v: u32) -> Result<()> {
        self.select(off)?;
        self.qt.outl(0xcfc, v)
    }

    pub fn write16(&mut self, off: u8, v: u16) -> Result<()> {
        self.select(off)?;
        self.qt.outw(0xcfc + u16::from(off & 2), v)
    }

    /// The standard capabilities as the guest sees them: `(id, offset)` in chain order (at
    /// most 48, so a looping chain ends).
    pub fn caps(&mut self) -> Result<Vec<(u8, u8)>> {
        let mut out = Vec::new();
        if self.read16(0x06)? & 0x10 == 0 {
            return Ok(out);
        }
        let mut off = self.read8(0x34)? & 0xfc;
        while off >= 0x40 && out.len() < 48 {
            let head = self.read16(off)?;
            out.push((head as u8, off));
            off = (head >> 8) as u8 & 0xfc;
        }
        Ok(out)
    }
}
