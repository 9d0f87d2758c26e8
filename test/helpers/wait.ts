/** Small test helpers: poll for a condition (wait on state, not sleeps) and make short temp dirs. */
import fs from 'node:fs';

/** Resolves once `cond` holds; rejects after `timeoutMs` naming `what`. Polls every 10 ms. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 10000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A fresh temp dir with a short path (Unix socket paths must stay under 108 bytes). */
export function tmpDir(prefix = '/tmp/gg-'): string {
  return fs.mkdtempSync(prefix);
}
