#!/bin/sh
# Checks that an aarch64 gateway can run the dCMMS Edge bundle, before it is deployed to
# (docs/aarch64.md "Check a gateway"). Run it on the gateway as the user the components run as:
#
#   sh check-gateway.sh        prints each check; exit 0 if all pass, 1 if one fails
#
# The floors come from the native addons shipped beside main.js: better-sqlite3, compiled for the
# bundle against Debian 12's C library, needs GLIBC_2.34 and GLIBCXX_3.4.29 (libstdc++ of GCC 11 or
# later); the components are Node.js 20 programs (the recipes run `node`, found on the PATH).
set -u
fail=0
ok() { printf 'ok    %s\n' "$1"; }
bad() { printf 'FAIL  %s\n' "$1"; fail=1; }

machine=$(uname -m)
case "$machine" in
  aarch64|arm64) ok "CPU architecture $machine (the recipes' linux/aarch64 manifest)"; nodearch=arm64 ;;
  x86_64|amd64) ok "CPU architecture $machine (the recipes' linux/amd64 manifest)"; nodearch=x64 ;;
  *) bad "CPU architecture $machine: no manifest for it (aarch64 or x86_64 only; 32-bit ARM is not built)"; nodearch=none ;;
esac

glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
[ -n "$glibc" ] || glibc=$(ldd --version 2>/dev/null | head -n 1 | grep -o '[0-9][0-9.]*$')
if [ -z "$glibc" ]; then
  bad "C library: not glibc, or its version unknown (musl, e.g. Alpine, is not supported)"
elif [ "$(printf '%s\n2.34\n' "$glibc" | sort -t. -k1,1n -k2,2n | head -n 1)" = "2.34" ]; then
  ok "glibc $glibc (2.34 or later)"
else
  bad "glibc $glibc: 2.34 or later needed (Debian 12, Ubuntu 22.04 or later)"
fi

libstdcxx=$( (ldconfig -p 2>/dev/null | grep -o '/[^ ]*libstdc++\.so\.6$'; ls /usr/lib/*/libstdc++.so.6 /usr/lib/libstdc++.so.6 /lib/*/libstdc++.so.6 2>/dev/null) | head -n 1)
if [ -z "$libstdcxx" ]; then
  bad "libstdc++.so.6 not found (install libstdc++6)"
elif LC_ALL=C grep -a -q 'GLIBCXX_3\.4\.29' "$libstdcxx"; then
  ok "$libstdcxx provides GLIBCXX_3.4.29"
else
  bad "$libstdcxx lacks GLIBCXX_3.4.29 (libstdc++ of GCC 11 or later needed)"
fi

if command -v node >/dev/null 2>&1; then
  v=$(node -p 'process.version + " " + process.arch' 2>/dev/null)
  case "$v" in
    v20.*" $nodearch") ok "node $v on the PATH" ;;
    *) bad "node $v on the PATH: Node.js 20 for this CPU ($nodearch) needed" ;;
  esac
else
  bad "no node on the PATH (Node.js 20; the recipes run \`node\`)"
fi

exit $fail
