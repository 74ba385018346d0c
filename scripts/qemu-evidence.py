#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""What the test VM's QEMU was doing when the guest stalled (scripts/vm.sh's watchdog).

    qemu-evidence.py PID QMP_SOCKET [ROUNDS]

Prints, ROUNDS times (default 2) five seconds apart:
- every QEMU thread: name, state, kernel wait channel and current system call (a worker
  thread blocked in the host's file system shows here);
- every virtio device's queues through QMP (`x-query-virtio-queue-status`): requests the
  device has taken and not completed (`inuse`), the used index and the last one it signalled
  to the guest; and the avail and used indexes in guest memory
  (`x-query-virtio-queue-element`). A guest avail index ahead of the device's last one is a
  request the device was never notified of; with them equal, nothing in use and the last
  used index signalled while the guest waits, an interrupt was lost on its way to the guest;
  requests in use are stuck in QEMU.
Everything it cannot get is said, never fatal: this runs on a guest that already failed.
"""

import json
import os
import socket
import sys
import time


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError as e:
        return f"({e.strerror})"


# The x86-64 system calls a QEMU thread is usually found in.
SYSCALLS = {0: "read", 1: "write", 3: "close", 4: "stat", 5: "fstat", 7: "poll", 17: "pread64",
            18: "pwrite64", 19: "readv", 20: "writev", 23: "select", 72: "fcntl", 74: "fsync",
            75: "fdatasync", 78: "getdents", 202: "futex", 217: "getdents64", 230: "nanosleep",
            232: "epoll_wait", 257: "openat", 262: "newfstatat", 270: "pselect6",
            271: "ppoll", 281: "epoll_pwait", 295: "preadv", 296: "pwritev", 332: "statx",
            437: "openat2"}


def syscall(text):
    parts = text.split()
    if parts and parts[0].lstrip("-").isdigit():
        return f"{SYSCALLS.get(int(parts[0]), parts[0])}({', '.join(parts[1:4])})"
    return text


def threads(pid, what="QEMU"):
    print(f"## {what} threads (pid {pid})")
    try:
        tids = sorted(os.listdir(f"/proc/{pid}/task"), key=int)
    except OSError as e:
        print(f"  (cannot list: {e.strerror})")
        return
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        stat = read(f"{base}/stat")
        state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
        utime_stime = stat.rsplit(")", 1)[-1].split()[11:13] if ")" in stat else []
        print(f"  {tid} {read(base + '/comm')!r} state {state} cpu(ticks) "
              f"{'+'.join(utime_stime)} wchan {read(base + '/wchan')} "
              f"syscall {syscall(read(base + '/syscall'))}")


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(path)
        self.buf = b""
        self._msg()  # greeting
        self.cmd("qmp_capabilities")

    def _msg(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("QMP closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        self.sock.sendall(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        while True:
            msg = self._msg()
            if "return" in msg:
                return msg["return"]
            if "error" in msg:
                raise OSError(f"{name}: {msg['error'].get('desc')}")
            # an event: skip it


def virtio(qmp):
    print("## virtio queues (QMP)")
    for dev in qmp.cmd("x-query-virtio"):
        path = dev["path"]
        try:
            st = qmp.cmd("x-query-virtio-status", path=path)
        except OSError as e:
            print(f"  {path}: {e}")
            continue
        tag = ""
        if dev.get("name") == "virtio-9p":
            try:
                tag = f" mount_tag {qmp.cmd('qom-get', path=path, property='mount_tag')}"
            except OSError:
                pass
        statuses = (st.get("status") or {}).get("statuses", [])
        short = [x.split(":")[0].replace("VIRTIO_CONFIG_S_", "") for x in statuses]
        print(f"  {dev.get('name')} {path}{tag}: status {'|'.join(short) or '0'} "
              f"isr {st.get('isr')} queues {st.get('num-vqs')} "
              f"broken {st.get('broken')} started {st.get('started')}")
        idle = 0
        for q in range(int(st.get("num-vqs", 0))):
            try:
                qs = qmp.cmd("x-query-virtio-queue-status", path=path, queue=q)
            except OSError as e:
                print(f"    queue {q}: {e}")
                continue
            vhost = "user-fs" in (dev.get("name") or "")
            if not vhost and not qs.get("inuse") and not qs.get("used-idx") and \
                    not qs.get("last-avail-idx"):
                idle += 1
                continue
            keys = ("inuse", "vring-num", "last-avail-idx", "shadow-avail-idx", "used-idx",
                    "signalled-used", "signalled-used-valid")
            print(f"    queue {q} {qs.get('name', '')}: " +
                  " ".join(f"{k} {qs.get(k)}" for k in keys))
            # The rings as the guest wrote them (read from guest memory): an avail index
            # ahead of the device's last-avail-idx is a request the device was never told
            # of (a lost notification); equal ones with the guest still waiting is an
            # interrupt lost on the way to the guest.
            try:
                el = qmp.cmd("x-query-virtio-queue-element", path=path, queue=q)
                avail, used = el.get("avail") or {}, el.get("used") or {}
                print(f"      guest memory: avail idx {avail.get('idx')} flags "
                      f"{avail.get('flags')}, used idx {used.get('idx')} flags "
                      f"{used.get('flags')}")
            except OSError as e:
                print(f"      guest memory: {e}")
        if idle:
            print(f"    ({idle} queue(s) never used)")


def virtiofsd_pids(qemu_pid):
    """The virtiofsd processes serving QEMU's vhost-user sockets (its command line's
    `-chardev socket,...,path=P`)."""
    try:
        with open(f"/proc/{qemu_pid}/cmdline", "rb") as f:
            args = f.read().decode(errors="replace").split("\0")
    except OSError:
        return []
    paths = {kv[5:] for a in args for kv in a.split(",") if kv.startswith("path=")}
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                c = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if c and c[0].endswith("virtiofsd") and paths & set(c):
            found.append(p)
    return found


def guest_sysrq(qmp, keys):
    """SysRq KEY for each KEY, typed on the guest's PS/2 keyboard (QMP send-key)."""
    for k in keys:
        try:
            qmp.cmd("send-key", keys=[{"type": "qcode", "data": q} for q in ("alt", "sysrq", k)])
            print(f"  sent SysRq {k}")
        except OSError as e:
            print(f"  (SysRq {k}: {e})")
        time.sleep(0.5)


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    pid, sock = argv[1], argv[2]
    rounds = int(argv[3]) if len(argv) > 3 else 2
    qmp = None
    for r in range(rounds):
        if r:
            time.sleep(5)
        print(f"# QEMU evidence, round {r + 1} of {rounds} ({time.strftime('%H:%M:%S')})")
        threads(pid)
        for v in virtiofsd_pids(pid):
            threads(v, "virtiofsd")
        try:
            # (QEMU's QMP socket takes one client at a time: one connection for everything.)
            qmp = qmp or Qmp(sock)
            virtio(qmp)
        except (OSError, ValueError) as e:
            print(f"  (QMP {sock}: {e})")
            qmp = None
    print("# the guest's own view: SysRq w (blocked tasks), l (CPU backtraces), m (memory),"
          " into its kernel log")
    try:
        guest_sysrq(qmp or Qmp(sock), ("w", "l", "m"))
        time.sleep(float(os.environ.get("MPW_EVIDENCE_SETTLE", "15")))
    except (OSError, ValueError) as e:
        print(f"  (QMP {sock}: {e})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
