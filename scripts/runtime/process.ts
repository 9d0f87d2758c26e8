/**
 * Running lifecycle steps as processes, the way the nucleus does (Greengrass component recipe
 * reference, Lifecycle; nucleus lifecyclemanager/ShellRunner.java, util/Exec.java):
 *
 * - each step runs as `sh -c "<script>"` with cwd `<root>/work/<name>`;
 * - in its own process group (spawned detached, so setsid), so that stopping signals the whole
 *   tree: SIGTERM to the group, a grace period, then SIGKILL;
 * - stdout and stderr go line by line, timestamped, into the component's own log file
 *   `<root>/logs/<name>.log` (the nucleus writes `logs/<component>.log` the same way).
 *
 * Output is read with backpressure: when the log file cannot keep up, the child's pipes are paused
 * (the child then blocks on write), so a component printing megabytes cannot grow our memory.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { Logger } from '../../components/lib/logger';
import { SKIPIF_RE } from './recipe-lifecycle';

/** Longest line kept whole; longer output is cut into pieces of this size. */
const MAX_LINE_CHARS = 64 * 1024;
const POLL_MS = 25;
/** How long we wait for a SIGKILLed group to vanish before giving up on it (it cannot resist SIGKILL). */
const KILL_WAIT_MS = 2000;

export type LogStream = 'stdout' | 'stderr' | 'lifecycle';

/** The per-component log file. One instance per component, shared by all of its steps. */
export class ComponentLog {
  private readonly out: fs.WriteStream;
  private readonly paused = new Set<Readable>();
  private closed = false;
  private failed = false;

  constructor(
    readonly file: string,
    private readonly now: () => number,
    private readonly logger: Logger,
  ) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.out = fs.createWriteStream(file, { flags: 'a' });
    this.out.on('drain', () => {
      for (const r of this.paused) r.resume();
      this.paused.clear();
    });
    this.out.on('error', (err) => {
      // Disk full or the file removed under us: say so once, keep the component running.
      if (!this.failed) this.logger.error('component log write failed', { file, err });
      this.failed = true;
    });
  }

  private format(stream: LogStream, lines: string[]): string {
    const ts = new Date(this.now()).toISOString();
    let text = '';
    for (const l of lines) text += `${ts} [${stream}] ${l}\n`;
    return text;
  }

  /** Append lines; false when the file is behind (the caller should pause its source). */
  write(stream: LogStream, lines: string[]): boolean {
    if (this.closed || this.failed || lines.length === 0) return true;
    return this.out.write(this.format(stream, lines));
  }

  /** Copy a child's pipe into the log, line by line, pausing it while the file is behind. */
  attach(readable: Readable, stream: 'stdout' | 'stderr'): void {
    const decoder = new StringDecoder('utf8');
    let carry = '';
    readable.on('data', (chunk: Buffer) => {
      const parts = (carry + decoder.write(chunk)).split('\n');
      carry = parts.pop() ?? '';
      while (carry.length > MAX_LINE_CHARS) {
        parts.push(carry.slice(0, MAX_LINE_CHARS));
        carry = carry.slice(MAX_LINE_CHARS);
      }
      if (!this.write(stream, parts) && !this.closed) {
        readable.pause();
        this.paused.add(readable);
      }
    });
    readable.on('end', () => {
      const rest = carry + decoder.end();
      if (rest) this.write(stream, [rest]);
      this.paused.delete(readable);
    });
    // A pipe error (the child vanished) only ends the copy.
    readable.on('error', () => this.paused.delete(readable));
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const r of this.paused) r.resume();
    this.paused.clear();
    return new Promise((resolve) => this.out.end(() => resolve()));
  }
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (e.g. the cwd is missing). */
  error?: Error;
}

export function describeExit(e: ExitInfo): string {
  if (e.error) return `could not start: ${e.error.message}`;
  if (e.signal) return `killed by ${e.signal}`;
  return `exit code ${e.code}`;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/**
 * True while any process of the group is alive. `kill(-pgid, 0)` also succeeds for zombies, and a
 * grandchild orphaned by the kill may stay a zombie for a while if the machine's init is slow to
 * reap it, so on Linux we look at /proc for a member that is not a zombie.
 */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

async function waitGroupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (!groupAlive(pgid)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export interface StepSpec {
  /** The lifecycle step, for log lines: install, startup, run... */
  step: string;
  script: string;
  cwd: string;
  env: Record<string, string>;
}

/** One running step: the `sh -c` leader and its process group. */
export class StepProcess {
  readonly step: string;
  readonly pid: number | undefined;
  readonly exited: Promise<ExitInfo>;
  private exit?: ExitInfo;
  private readonly child: ChildProcess;

  constructor(spec: StepSpec, log: ComponentLog) {
    this.step = spec.step;
    this.child = spawn('sh', ['-c', spec.script], {
      cwd: spec.cwd,
      env: spec.env,
      detached: true, // setsid: its own process group, so the whole tree can be signalled
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.pid = this.child.pid;
    if (this.child.stdout) log.attach(this.child.stdout, 'stdout');
    if (this.child.stderr) log.attach(this.child.stderr, 'stderr');
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      this.child.on('error', (error) => {
        // 'error' without 'exit' means the spawn itself failed; later errors (none expected: we
        // signal the group with process.kill) must not go unhandled.
        if (this.pid === undefined && !this.exit) {
          this.exit = { code: null, signal: null, error };
          resolve(this.exit);
        }
      });
    });
  }

  /** True until the leader has exited (members of its group may live on). */
  get running(): boolean {
    return this.exit === undefined;
  }

  /** True while anything of this step's process group is alive. */
  alive(): boolean {
    if (this.pid === undefined) return false;
    return this.running || groupAlive(this.pid);
  }

  /**
   * Stop the whole tree: SIGTERM to the group, up to `graceMs` for it to go, then SIGKILL
   * (util/Exec.close: 5 s grace by default). Resolves when the group is gone or after the
   * SIGKILL wait; safe to call more than once.
   */
  async kill(graceMs: number): Promise<'gone' | 'terminated' | 'killed' | 'stuck'> {
    const pgid = this.pid;
    if (pgid === undefined || !this.alive()) return 'gone';
    signalGroup(pgid, 'SIGTERM');
    if (await waitGroupGone(pgid, graceMs)) return 'terminated';
    signalGroup(pgid, 'SIGKILL');
    return (await waitGroupGone(pgid, KILL_WAIT_MS)) ? 'killed' : 'stuck';
  }
}

/** Wait for the leader to exit, or `timeoutMs` (undefined: no limit). */
export function waitExit(p: StepProcess, timeoutMs: number | undefined): Promise<ExitInfo | 'timeout'> {
  if (timeoutMs === undefined) return p.exited;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), timeoutMs);
    void p.exited.then((e) => {
      clearTimeout(timer);
      resolve(e);
    });
  });
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Evaluate a Skipif expression (GenericExternalService.shouldSkip): `onpath <exe>` is true when
 * the executable is found on the step's PATH, `exists <path>` when the path exists (`~` is the
 * home directory; a relative path is taken from the step's cwd); a leading `!` negates.
 * Throws on anything else, which the nucleus treats as a step error.
 */
export function shouldSkip(expr: string, env: Record<string, string>, cwd: string): boolean {
  let text = expr.trim();
  let negate = false;
  if (text.startsWith('!')) {
    negate = true;
    text = text.slice(1).trim();
  }
  const m = SKIPIF_RE.exec(text);
  if (!m) throw new Error(`invalid Skipif ${JSON.stringify(expr)}: use "onpath <executable>" or "exists <path>", optionally with a leading "!"`);
  const arg = m[2].trim();
  let result: boolean;
  if (m[1] === 'onpath') {
    result = arg.includes('/')
      ? isExecutable(path.resolve(cwd, arg))
      : (env.PATH ?? '').split(':').some((dir) => dir !== '' && isExecutable(path.join(dir, arg)));
  } else {
    const home = env.HOME ?? '';
    const p = arg === '~' ? home : arg.startsWith('~/') ? path.join(home, arg.slice(2)) : arg;
    result = fs.existsSync(path.resolve(cwd, p));
  }
  return result !== negate;
}
