#!/usr/bin/env bash
# Installs the Debian packages of the real test peers (mosquitto, pymodbus, aiosmtpd, socat, chromium
# for the LocalHmi browser test (driven by playwright-core, never its own browser download), and
# PyEphem for the solar position check; see docs/conventions.md "Tests"), once. Debian's python3-*
# packages are seen only by /usr/bin/python3, so the tests start their pymodbus servers and the
# ephem script with that interpreter.
# The aarch64 build and tests (docs/aarch64.md) need the cross compilers, which bring the arm64 C
# library under /usr/aarch64-linux-gnu, and QEMU user mode. Never add the multiarch libc6:arm64
# beside them: with both, node under QEMU spins at full CPU forever.
# Needs root (or sudo). Skips the install when every package is already there.
set -euo pipefail
PACKAGES=(mosquitto python3-pymodbus python3-serial python3-serial-asyncio python3-aiosmtpd python3-ephem socat chromium g++-aarch64-linux-gnu qemu-user)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "test peers already installed: ${PACKAGES[*]}"
else
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing test peers: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The linux-arm64 install tree and Node (cross-compiled addons; cached outside the checkout per
# package-lock.json and Node version, docs/aarch64.md "Build"): test/cdk and test/arm64 build with
# --arch all. After `npm ci`: it needs this checkout's node_modules.
cd "$(dirname "$0")/.."
node scripts/arm64/toolchain.js prepare >/dev/null
echo "arm64 tree ready"
