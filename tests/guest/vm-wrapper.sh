#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM (as root, cwd = repository): runs one command line, saving its
# output and status to the host-visible directory OUT, then the kernel log.
#
# usage: vm-wrapper.sh OUT CMD

out="$1"
cmd="$2"
export MPW_OUT="$out"
export MPW_ROOT="$PWD"
# The console gets warnings and worse (WARN, lockdep, driver time-outs), not the info chatter.
dmesg -n 5 2>/dev/null
# The kernel log as it is written, from boot on: a run that hangs, or that the host kills,
# still leaves its log (dmesg.txt is only written at the end). `dmesg -w` flushes each line.
dmesg -w > "$out/kmsg.txt" 2>&1 &
follower=$!
# A heartbeat on the serial console every minute, from bash builtins only (no file of the 9p
# root or of $out is touched): if the guest stalls again, the console tells a guest that is
# alive but whose 9p file systems stopped answering (heartbeats go on, kmsg.txt stops) from a
# frozen guest (both stop). KERN_ERR, so it reaches the console at loglevel 5.
exec 9< <(exec sleep infinity)
(while :; do read -r -t 60 -u 9 _; echo "<3>mpw-heartbeat: the guest is alive" > /dev/kmsg; done) &
heartbeat=$!
bash -c "$cmd" > "$out/cmd.out" 2>&1
rc=$?
dmesg > "$out/dmesg.txt" 2>&1
kill "$follower" "$heartbeat" 2>/dev/null
echo "$rc" > "$out/cmd.rc"
sync
exit "$rc"
