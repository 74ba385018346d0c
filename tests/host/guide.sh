#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# docs/user-guide.md's "Packages" tells an admin what to install by hand; scripts/install-deps.sh
# is what installs them for every test run. They must not drift apart: the Debian packages of
# the guide's `apt-get install` lines (with the release each comes from) are exactly the
# installer's host packages, libvirt's and QEMU's, and the guide's bindgen is the pinned one.
# Its last line is the summary.

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/versions.sh
. "$root/scripts/versions.sh"
deps="$root/scripts/install-deps.sh"

# The installer's lists, as bash reads them (the array assignments only).
installer="$(bash -c '
	eval "$(sed -n "/^host_pkgs=(/,/^)/p; /^libvirt_pkgs=(/p" "$1")"
	for p in "${host_pkgs[@]}"; do echo "bookworm $p"; done
	for p in "${libvirt_pkgs[@]}"; do echo "bookworm-backports $p"; done
' - "$deps")"
# QEMU and systemd-container are named where they are installed.
grep -q -- '-t bookworm-backports qemu-system-x86' "$deps" &&
	installer+=$'\n'"bookworm-backports qemu-system-x86"
grep -q 'systemd-container/bookworm' "$deps" &&
	installer+=$'\n'"bookworm-backports systemd-container/bookworm"

guide="$(python3 - "$root/docs/user-guide.md" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
sec = text.split("### Packages", 1)[1].split("\n### ", 1)[0]
block = re.search(r"```sh\n(.*?)```", sec, re.S).group(1)
block = block.replace("\\\n", " ")
for line in block.splitlines():
    line = line.split("#", 1)[0]
    w = line.split()
    if "apt-get" in w and "install" in w:
        rel, args, i = "bookworm", w[w.index("install") + 1:], 0
        while i < len(args):
            a = args[i]
            if a == "-t":
                rel = args[i + 1]; i += 2; continue
            if not a.startswith("-"):
                print(rel, a)
            i += 1
    m = re.search(r"bindgen-cli@(\S+)", line)
    if m:
        print("bindgen", m.group(1))
PY
)"

fail() {
	echo "FAIL: $*"
	exit 1
}
only_guide="$(comm -23 <(grep -v '^bindgen ' <<< "$guide" | sort -u) <(sort -u <<< "$installer"))"
only_installer="$(comm -13 <(grep -v '^bindgen ' <<< "$guide" | sort -u) <(sort -u <<< "$installer"))"
[ -z "$only_guide" ] || fail "the user guide installs what scripts/install-deps.sh does not: $(paste -sd, <<< "$only_guide")"
[ -z "$only_installer" ] || fail "scripts/install-deps.sh installs host packages the user guide does not list: $(paste -sd, <<< "$only_installer")"
[ "$(sed -n 's/^bindgen //p' <<< "$guide")" = "$BINDGEN_VERSION" ] ||
	fail "the user guide's bindgen-cli is not $BINDGEN_VERSION"
echo "guide: the user guide's packages are the installer's ($(wc -l <<< "$installer") Debian packages, bindgen-cli $BINDGEN_VERSION)"
