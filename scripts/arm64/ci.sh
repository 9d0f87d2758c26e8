#!/usr/bin/env bash
# The aarch64 part of CI (docs/aarch64.md "In CI"), after the main tests: `npm run test:arm64`.
#   1. the arm64 tree (cached per package-lock.json and Node version; a cold cache cross-compiles);
#   2. test/arm64 on x64 Jest: the `--arch all` build, and the whole bundle deployed through the
#      local runtime as an aarch64 core device, every component in the arm64 Node under QEMU;
#   3. the unit tests in the arm64 Node under QEMU (scripts/arm64/test-unit.js).
# Prints how long each step took: the figure docs/aarch64.md quotes.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS
node scripts/arm64/toolchain.js prepare >/dev/null
prepared=$SECONDS
# In band: the bundle test runs nine components under QEMU; beside another test file they would
# share the two cores with it.
npx jest -i --testPathIgnorePatterns /node_modules/ -- test/arm64
tested=$SECONDS
rc=0
node scripts/arm64/test-unit.js || rc=$?
done=$SECONDS
echo "arm64 CI: tree $((prepared - start)) s, test/arm64 $((tested - prepared)) s, unit tests under QEMU $((done - tested)) s, total $((done - start)) s"
exit $rc
