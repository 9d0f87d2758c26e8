/**
 * The local runtime as it runs on a gateway: `dcmms-edge nucleus` in its own process, components
 * deployed into it with `dcmms-edge deployment create --wait` as a user would. The benchmark only
 * talks to it through the CLI and the files the nucleus writes under its root.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildSync } from 'esbuild';
import YAML from 'yaml';

export interface NucleusProcessOptions {
  /** dist/cli.js */
  cliPath: string;
  /** How long to wait for cli_ipc_info/shared_config. */
  startTimeoutMs?: number;
  /** Extra node options for the nucleus process, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']. */
  nodeArgs?: string[];
}

const LOG_TAIL_LINES = 60;
const MAX_ERRORS = 100;

/** The nucleus logs JSON lines (components/lib/logger); an error line becomes one short string. */
function errorOf(line: string): string | undefined {
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof rec !== 'object' || rec === null) return undefined;
  const { level, component, msg, time: _time, ...rest } = rec as Record<string, unknown>;
  if (level !== 'error') return undefined;
  return `${String(component ?? 'nucleus')}: ${String(msg)} ${JSON.stringify(rest)}`;
}
const STOP_GRACE_MS = 15_000;

/** Every nucleus still running, so an interrupted benchmark can stop them all. */
const running = new Set<NucleusProcess>();

export class NucleusProcess {
  readonly root: string;
  private readonly child: ChildProcess;
  private readonly logTail: string[] = [];
  private readonly errorLines: string[] = [];
  private exited = false;
  private readonly exitPromise: Promise<number | null>;
  private deployments = 0;

  private constructor(private readonly opts: NucleusProcessOptions) {
    // Short: the socket path must fit in sun_path (107 bytes).
    this.root = fs.mkdtempSync('/tmp/gb-');
    this.child = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.cliPath, 'nucleus', '--root', this.root, '--log-level', 'warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Chunks may split lines: keep the unfinished end for the next chunk.
    let partial = '';
    const keep = (chunk: Buffer): void => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.trim() === '') continue;
        this.logTail.push(line);
        if (this.logTail.length > LOG_TAIL_LINES) this.logTail.shift();
        const error = errorOf(line);
        if (error !== undefined && this.errorLines.length < MAX_ERRORS) this.errorLines.push(error);
      }
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exitPromise = new Promise((resolve) => {
      this.child.once('exit', (code) => {
        this.exited = true;
        running.delete(this);
        resolve(code);
      });
    });
    running.add(this);
  }

  static async start(opts: NucleusProcessOptions): Promise<NucleusProcess> {
    const n = new NucleusProcess(opts);
    try {
      await n.waitReady(opts.startTimeoutMs ?? 30_000);
    } catch (err) {
      await n.stop({ keepRoot: true });
      throw err;
    }
    return n;
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('nucleus process has no pid');
    return this.child.pid;
  }

  /** Error-level lines the nucleus logged so far, as `<component>: <msg> {fields}`. */
  errors(): string[] {
    return [...this.errorLines];
  }

  /** The nucleus's recent stdout/stderr, for error messages. */
  tail(): string {
    return this.logTail.join('\n');
  }

  workDir(component: string): string {
    return path.join(this.root, 'work', component);
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const file = path.join(this.root, 'cli_ipc_info', 'shared_config');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exited) throw new Error(`the nucleus exited during start:\n${this.tail()}`);
      if (fs.existsSync(file)) {
        try {
          const info = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
          if (typeof info.socket_path === 'string' && typeof info.cli_auth_token === 'string') return;
        } catch {
          // Being written; look again.
        }
      }
      if (Date.now() > deadline) throw new Error(`the nucleus did not write ${file} within ${timeoutMs} ms:\n${this.tail()}`);
      await delay(50);
    }
  }

  /** Writes the recipes into a fresh recipe folder and deploys them as roots, waiting for the outcome. */
  async deploy(recipes: Array<{ name: string; yaml: string }>): Promise<void> {
    const dir = path.join(this.root, 'bench-recipes', String(++this.deployments));
    fs.mkdirSync(dir, { recursive: true });
    for (const r of recipes) fs.writeFileSync(path.join(dir, `${r.name}-1.0.0.yaml`), r.yaml);
    const args = [this.opts.cliPath, 'deployment', 'create', '--root', this.root, '--recipeDir', dir];
    for (const r of recipes) args.push('--merge', `${r.name}=1.0.0`);
    args.push('--wait');
    const { code, output } = await runCli(args);
    if (code !== 0) {
      const logs = recipes.map((r) => this.componentLog(r.name)).join('\n');
      throw new Error(`deployment of ${recipes.map((r) => r.name).join(', ')} failed (exit ${code}):\n${output}\n${logs}\nnucleus:\n${this.tail()}`);
    }
  }

  /** The last lines of a component's log (its stdout and stderr), for error messages. */
  componentLog(name: string, lines = 15): string {
    const file = path.join(this.root, 'logs', `${name}.log`);
    try {
      const all = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
      return `${name} log (last lines):\n${all.slice(-lines).join('\n')}`;
    } catch {
      return `${name}: no log at ${file}`;
    }
  }

  /**
   * SIGTERM (the nucleus stops its components, then exits), SIGKILL after a grace time. The root
   * is removed unless asked to keep it.
   */
  async stop(opts: { keepRoot?: boolean } = {}): Promise<void> {
    if (!this.exited) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (!this.exited) this.child.kill('SIGKILL');
      }, STOP_GRACE_MS);
      await this.exitPromise;
      clearTimeout(timer);
    }
    if (!opts.keepRoot) fs.rmSync(this.root, { recursive: true, force: true });
  }

  /** Last resort on exit paths where nothing can be awaited. */
  killNow(): void {
    if (!this.exited) this.child.kill('SIGTERM');
  }
}

/** Stops every nucleus this process started (on SIGINT and on errors). */
export async function stopAllNuclei(opts: { keepRoot?: boolean } = {}): Promise<void> {
  await Promise.all([...running].map((n) => n.stop(opts)));
}

export function killAllNucleiNow(): void {
  for (const n of running) n.killNow();
}

/** Runs `node <args>` (the dcmms-edge CLI), collecting its output. */
export function runCli(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Bundles a worker script (scripts/bench/<entry>) so plain `node` can run it; inside dist/ so the SDK resolves from node_modules. */
export function bundleWorker(projectRoot: string, entry: string, outName: string): string {
  const src = path.join(projectRoot, 'scripts', 'bench', entry);
  const outfile = path.join(projectRoot, 'dist', outName);
  if (!fs.existsSync(src)) throw new Error(`missing ${src}`);
  buildSync({ entryPoints: [src], bundle: true, platform: 'node', target: 'node20', format: 'cjs', packages: 'external', outfile, logLevel: 'silent' });
  return outfile;
}

export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The pub/sub policies of a benchmark worker component: operation -> resources. */
export interface WorkerPolicy {
  description: string;
  operations: string[];
  resources: string[];
}

/** A benchmark worker's recipe: its Run command and only the pub/sub policies it is given. */
export function workerRecipe(name: string, description: string, policies: WorkerPolicy[], run: string): { name: string; yaml: string } {
  const pubsub: Record<string, unknown> = {};
  policies.forEach((p, i) => {
    pubsub[`${name}:pubsub:${i + 1}`] = { policyDescription: p.description, operations: p.operations, resources: p.resources };
  });
  const doc = {
    RecipeFormatVersion: '2020-01-25',
    ComponentName: name,
    ComponentVersion: '1.0.0',
    ComponentDescription: description,
    ComponentPublisher: 'dcmms-edge bench',
    ComponentConfiguration: { DefaultConfiguration: { accessControl: { 'aws.greengrass.ipc.pubsub': pubsub } } },
    Manifests: [{ Platform: { os: '*' }, Lifecycle: { Run: run } }],
  };
  return { name, yaml: YAML.stringify(doc, { version: '1.1', lineWidth: 0 }) };
}
