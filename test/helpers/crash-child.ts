/**
 * The kill -9 harness the crash tests share: a child process appends at a high rate and reports
 * on stdout, one line each, `S <first seq>` at start, `A <seq> <value>` per appended sample and
 * `C <seq>` when everything up to seq is committed. After a given number of commits (and a little
 * more time) the parent SIGKILLs it. Other line kinds go to `onLine`.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

export interface CrashRound {
  start: number;
  committed: number;
  appended: Map<number, number>;
  lastAppended: number;
}

const ROOT = path.resolve(__dirname, '../..');

export function runAndKill(
  args: string[],
  commitsBeforeKill: number,
  extraDelayMs: number,
  onLine: (kind: string, a: string, b: string) => void = () => undefined,
): Promise<CrashRound> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules') }, stdio: ['ignore', 'pipe', 'pipe'] });
    const round: CrashRound = { start: -1, committed: -1, appended: new Map(), lastAppended: -1 };
    let commits = 0;
    let killing = false;
    let buf = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const [kind = '', a = '', b = ''] = buf.slice(0, nl).split(' ');
        buf = buf.slice(nl + 1);
        if (kind === 'S') round.start = Number(a);
        else if (kind === 'A') {
          round.appended.set(Number(a), Number(b));
          round.lastAppended = Number(a);
        } else if (kind === 'C') {
          round.committed = Number(a);
          commits += 1;
          if (commits >= commitsBeforeKill && !killing) {
            killing = true;
            setTimeout(() => child.kill('SIGKILL'), extraDelayMs);
          }
        } else onLine(kind, a, b);
      }
    });
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve(round) : reject(new Error(`child exited ${code} ${signal}: ${stderr}`))));
  });
}
