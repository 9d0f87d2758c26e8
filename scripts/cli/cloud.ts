/** `dcmms-edge cloud online|offline --root DIR`: flip a running nucleus's simulated IoT Core reachability. */
import fs from 'node:fs';
import { CliUsageError, parse, requireRoot } from './args';
import { pidFile } from './nucleus';

export async function runCloud(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { root: { type: 'string' } });
  const root = requireRoot(values);
  const what = positionals[0];
  if (what !== 'online' && what !== 'offline') throw new CliUsageError('cloud takes online or offline');
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile(root), 'utf8'));
  } catch {
    throw new Error(`no running nucleus at ${root} (no nucleus.pid)`);
  }
  process.kill(pid, what === 'offline' ? 'SIGUSR1' : 'SIGUSR2');
  process.stdout.write(`IoT Core is now ${what === 'offline' ? 'unreachable' : 'reachable'} for the nucleus at ${root}\n`);
  return 0;
}
