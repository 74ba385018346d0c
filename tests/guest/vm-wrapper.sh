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
# Keep the console for the kernel's own messages and our output only.
dmesg -n 4 2>/dev/null
bash -c "$cmd" > "$out/cmd.out" 2>&1
rc=$?
dmesg > "$out/dmesg.txt" 2>&1
echo "$rc" > "$out/cmd.rc"
sync
exit "$rc"
