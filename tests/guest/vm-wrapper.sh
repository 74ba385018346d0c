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
bash -c "$cmd" > "$out/cmd.out" 2>&1
rc=$?
dmesg > "$out/dmesg.txt" 2>&1
kill "$follower" 2>/dev/null
echo "$rc" > "$out/cmd.rc"
sync
exit "$rc"
