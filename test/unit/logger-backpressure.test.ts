/**
 * A full stdout slows logging down; it never drops lines. A real child process logs 20 000 lines
 * through the default destination into a pipe whose reader stops reading for a second, then reads
 * everything: every line arrives, whole and in order, and the child could not finish while the
 * reader was away (it was held back, not running ahead and dropping). A stdout nobody reads any
 * more (EPIPE) costs the lines, never the process.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildSync } from 'esbuild';

const ROOT = path.resolve(__dirname, '../..');
const LINES = 20_000;
const READER_AWAY_MS = 1000;

/**
 * The child. Once Node touches process.stdout (console.log does, and so do the SDKs a component
 * loads), libuv makes a pipe on fd 1 non-blocking: a full pipe then fails a write with EAGAIN
 * instead of blocking it. Mode 'touch-first' touches it before the logger exists, as a running
 * component does; mode 'reopen-after' opens fd 1 as a socket after the logger exists, which makes
 * the pipe non-blocking behind the logger's back. The child reports on stderr whether fd 1 was
 * non-blocking while it logged.
 */
const CHILD = `
import fs from 'node:fs';
import net from 'node:net';
import { createLogger } from './components/lib/logger';
const [, , lines, mode] = process.argv;
if (mode === 'touch-first') void process.stdout;
const log = createLogger({ component: 'child' });
log.info('first');
if (mode === 'reopen-after') new net.Socket({ fd: 1, readable: false, writable: true });
const flags = /flags:\\s+([0-7]+)/.exec(fs.readFileSync('/proc/self/fdinfo/1', 'utf8'))![1]!;
const nonBlocking = (parseInt(flags, 8) & 0o4000) !== 0;
fs.writeSync(2, 'begin nonblocking=' + nonBlocking + '\\n');
for (let i = 0; i < Number(lines); i++) log.info('line', { i, pad: 'x'.repeat(64) });
fs.writeSync(2, 'done\\n');
process.exit(0);
`;

let dir: string;
let childJs: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logger-bp-'));
  childJs = path.join(dir, 'child.js');
  // Bundled whole, as scripts/build.js bundles a component.
  buildSync({ stdin: { contents: CHILD, resolveDir: ROOT, loader: 'ts', sourcefile: 'child.ts' }, bundle: true, platform: 'node', target: 'node20', outfile: childJs, logLevel: 'error' });
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

test.each([
  ['touch-first', false],
  ['reopen-after', true],
])('a reader that pauses slows the logger down; every line arrives, in order (%s)', async (mode, nonBlocking) => {
  const child = spawn(process.execPath, [childJs, String(LINES), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Listening before pausing: a paused stream nobody listens to is drained into nothing when the
  // child exits (Node's flushStdio), which would hide lines a child logged and then exited.
  const chunks: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => chunks.push(d));
  child.stdout.pause();
  let stderr = '';
  let readerBack = false;
  let doneWhileAway = false;
  const begun = new Promise<void>((resolve) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('begin')) resolve();
      if (stderr.includes('done\n') && !readerBack) doneWhileAway = true;
    });
  });
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));

  await begun;
  // The reader is away: the pipe fills within milliseconds of the first lines.
  await new Promise((resolve) => setTimeout(resolve, READER_AWAY_MS));
  readerBack = true;
  child.stdout.resume();
  expect(await closed).toBe(0);

  const text = Buffer.concat(chunks).toString('utf8');
  expect(text.endsWith('\n')).toBe(true);
  const [first = '', ...lines] = text.slice(0, -1).split('\n');
  expect((JSON.parse(first) as { msg: string }).msg).toBe('first');
  expect(lines).toHaveLength(LINES);
  const seq = lines.map((l) => (JSON.parse(l) as { i: number }).i);
  expect(seq).toEqual(Array.from({ length: LINES }, (_, i) => i));
  // Held back while nobody read, rather than running ahead.
  expect(doneWhileAway).toBe(false);
  // The case this run stands for: the kernel held the write (blocking pipe) or sonic-boom retried EAGAIN.
  expect(stderr).toBe(`begin nonblocking=${nonBlocking}\ndone\n`);
});

test('a closed stdout (EPIPE) loses the lines, not the process', async () => {
  const child = spawn(process.execPath, [childJs, '2000', 'touch-first'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  expect(stderr).toBe('begin nonblocking=false\ndone\n');
  expect(code).toBe(0);
});
