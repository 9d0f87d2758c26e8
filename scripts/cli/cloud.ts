/** `dcmms-edge cloud online|offline --root DIR`: flip a running nucleus's simulated IoT Core reachability. */
import fs from 'node:fs';
import { CliUsageError, parseCommand, requireRoot } from './args';
import { CLOUD } from './commands';
import { pidFile } from './nucleus';

export async function runCloud(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(CLOUD, args, { positionals: 1 });
  const root = requireRoot(values);
  const what = positionals[0];
  if (what !== 'online' && what !== 'offline') throw new CliUsageError(`cloud takes online or offline${what ? `, not '${what}'` : ''}`);
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile(root), 'utf8'));
  } catch {
    throw new Error(`no running nucleus at ${root} (no nucleus.pid): start one with 'dcmms-edge nucleus --root ${root}' or 'npm start'`);
  }
  try {
    process.kill(pid, what === 'offline' ? 'SIGUSR1' : 'SIGUSR2');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') throw new Error(`no running nucleus at ${root} (nucleus.pid names process ${pid}, which has ended)`);
    throw e;
  }
  process.stdout.write(`IoT Core is now ${what === 'offline' ? 'unreachable' : 'reachable'} for the nucleus at ${root}\n`);
  return 0;
}
