/**
 * The processes the local runtime started for a component, found in /proc: the node process whose
 * script is `<root>/packages/artifacts/<name>/<version>/main.js` (the `sh -c` wrapper, if any, is
 * left out). Tests use it to kill -9 a component or to show that a change did not restart it.
 */
import fs from 'node:fs';
import path from 'node:path';

export function componentPids(rootDir: string, name: string, version: string): number[] {
  const script = path.join(rootDir, 'packages', 'artifacts', name, version, 'main.js');
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (path.basename(argv[0] ?? '') !== 'sh' && argv.slice(1).includes(script)) out.push(Number(p));
  }
  return out;
}
