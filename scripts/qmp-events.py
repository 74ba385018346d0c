#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""How the test VM's QEMU ended: its QMP events, as they come, with the host's time.

    qmp-events.py QMP_SOCKET OUT_FILE

Waits (up to a minute) for QEMU's QMP socket, asks for its events and appends one line per
event to OUT_FILE until QEMU closes the connection, then a last line saying so. A VM that
ends without the guest's status (scripts/vm.sh) is explained by the last events: SHUTDOWN
with reason `guest-shutdown` (the guest powered off: its init ended), `guest-reset` (with
-no-reboot: a triple fault or a reset the guest asked for), `guest-panic`, `host-signal`
(QEMU got SIGTERM or SIGINT); no SHUTDOWN at all before the end is a QEMU that crashed or was
killed (SIGKILL: by the host's OOM killer, say).
Everything it cannot get is said in OUT_FILE, never fatal.
"""

import json
import socket
import sys
import time


def stamp():
    return time.strftime("%H:%M:%S")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, out = sys.argv[1], sys.argv[2]
    with open(out, "a", encoding="utf-8", buffering=1) as log:
        s = socket.socket(socket.AF_UNIX)
        for _ in range(600):
            try:
                s.connect(path)
                break
            except OSError:
                time.sleep(0.1)
        else:
            log.write(f"{stamp()} (no QMP socket at {path} after 60 s)\n")
            return
        f = s.makefile("rwb", buffering=0)
        f.readline()  # the greeting
        f.write(b'{"execute": "qmp_capabilities"}\n')
        log.write(f"{stamp()} connected\n")
        for raw in f:
            try:
                msg = json.loads(raw)
            except ValueError:
                log.write(f"{stamp()} (not JSON: {raw[:200]!r})\n")
                continue
            if "event" in msg:
                data = json.dumps(msg.get("data", {}), sort_keys=True)
                log.write(f"{stamp()} {msg['event']} {data}\n")
        log.write(f"{stamp()} QEMU closed the connection\n")


if __name__ == "__main__":
    main()
