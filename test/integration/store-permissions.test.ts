/**
 * The store's files when the writer (Processor) and a reader (Aggregator) run as different posix
 * users sharing a group, as docs/store.md "Files, owners and permissions" recommends: the real
 * store code in child processes started with setpriv as uid 62001 (writer) and 62002 (reader),
 * group 62000. Needs root to switch users: skipped otherwise (and without setpriv).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildSync } from 'esbuild';

const ROOT = path.resolve(__dirname, '../..');
const WRITER = 62001;
const READER = 62002;
const GROUP = 62000;
const canSwitch = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
const maybe = canSwitch ? describe : describe.skip;

/** A child that runs store commands read from stdin, one per line, and answers one line each. */
const AGENT = `
const store = require('./store.js');
const readline = require('node:readline');
let s;
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [cmd, arg] = line.split(' ');
  try {
    if (cmd === 'write') { s = store.openStore({ path: arg }); console.log('ok'); }
    else if (cmd === 'append') { s.append([{ assetId: 'inv-1', point: 'W', ts: Date.now() - 60000 + Number(arg), v: 1, q: 'good' }]); console.log(s.flush() ? 'ok' : 'error commit failed'); }
    else if (cmd === 'read') { s = store.openStoreReader(arg); console.log('ok'); }
    else if (cmd === 'count') { console.log(String(s.range({ assetId: 'inv-1', point: 'W' }, 0, 2 ** 46).length)); }
    else if (cmd === 'close') { s.close(); s = undefined; console.log('ok'); }
  } catch (e) { console.log('error ' + (e.code || e.message)); }
});
rl.on('close', () => { try { s?.close(); } finally { process.exit(0); } });
`;

class Agent {
  private readonly child: ChildProcessWithoutNullStreams;
  private buf = '';
  private waiting: Array<(line: string) => void> = [];

  /** As Greengrass runs a component with runWith.posixUser `user:group`: that group is the primary one. */
  constructor(bin: string, uid: number, gid: number) {
    this.child = spawn('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', 'sh', '-c', `umask 022; exec ${JSON.stringify(process.execPath)} agent.js`], {
      cwd: bin,
      env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules') },
    });
    this.child.stdout.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.waiting.shift()?.(line);
      }
    });
  }

  ask(cmd: string): Promise<string> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.child.stdin.write(`${cmd}\n`);
    });
  }

  end(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.on('exit', () => resolve());
      this.child.stdin.end();
    });
  }
}

maybe('store files shared by a writer and a reader of another user in one group', () => {
  let bin: string;
  let site: string;
  const agents: Agent[] = [];
  const agent = (uid: number): Agent => {
    const a = new Agent(bin, uid, GROUP);
    agents.push(a);
    return a;
  };
  const ls = (): Record<string, string> =>
    Object.fromEntries(fs.readdirSync(site).map((f) => {
      const st = fs.statSync(path.join(site, f));
      return [f, `${st.uid}:${st.gid} ${(st.mode & 0o777).toString(8)}`];
    }));

  beforeAll(() => {
    bin = fs.mkdtempSync(path.join(os.tmpdir(), 'store-perm-bin-'));
    buildSync({ entryPoints: [path.join(ROOT, 'components/lib/store/index.ts')], bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['better-sqlite3'], outfile: path.join(bin, 'store.js'), logLevel: 'error' });
    fs.writeFileSync(path.join(bin, 'agent.js'), AGENT);
    fs.chmodSync(bin, 0o755);
  });
  beforeEach(() => {
    // The Processor's work folder: owned by the writer and the shared group, mode per test.
    site = fs.mkdtempSync(path.join(os.tmpdir(), 'store-perm-site-'));
    fs.chownSync(site, WRITER, GROUP);
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.end()));
    fs.rmSync(site, { recursive: true, force: true });
  });
  afterAll(() => fs.rmSync(bin, { recursive: true, force: true }));

  test('folder 0750: the reader reads while the writer runs, survives its restart, and the files stay 0640', async () => {
    fs.chmodSync(site, 0o750);
    const file = path.join(site, 'raw.db');
    const w = agent(WRITER);
    const r = agent(READER);
    expect(await w.ask(`write ${file}`)).toBe('ok');
    expect(await w.ask('append 1000')).toBe('ok');
    // umask 022 would give 0644; the store sets 0640, and -wal/-shm follow the database file.
    expect(ls()).toEqual({ 'raw.db': `${WRITER}:${GROUP} 640`, 'raw.db-wal': `${WRITER}:${GROUP} 640`, 'raw.db-shm': `${WRITER}:${GROUP} 640` });
    expect(await r.ask(`read ${file}`)).toBe('ok');
    expect(await r.ask('count')).toBe('1');
    expect(await w.ask('append 2000')).toBe('ok');
    expect(await r.ask('count')).toBe('2'); // a read-only -shm is enough while the writer runs
    // The writer closes (a Processor restart): a connected reader keeps the -wal/-shm alive.
    expect(await w.ask('close')).toBe('ok');
    expect(Object.keys(ls()).sort()).toEqual(['raw.db', 'raw.db-shm', 'raw.db-wal']);
    expect(await r.ask('count')).toBe('2');
    expect(await w.ask(`write ${file}`)).toBe('ok');
    expect(await w.ask('append 3000')).toBe('ok');
    expect(await r.ask('count')).toBe('3');
    // A reader started now opens too (the files exist).
    const r2 = agent(READER);
    expect(await r2.ask(`read ${file}`)).toBe('ok');
    expect(await r2.ask('count')).toBe('3');
  });

  test('folder 0750: after a clean close with no reader connected, a reader cannot open until the writer is back', async () => {
    fs.chmodSync(site, 0o750);
    const file = path.join(site, 'raw.db');
    const w = agent(WRITER);
    expect(await w.ask(`write ${file}`)).toBe('ok');
    expect(await w.ask('append 1000')).toBe('ok');
    expect(await w.ask('close')).toBe('ok');
    expect(Object.keys(ls())).toEqual(['raw.db']); // the last connection checkpointed and removed -wal/-shm
    const r = agent(READER);
    expect(await r.ask(`read ${file}`)).toMatch(/^error SQLITE_(READONLY_DIRECTORY|CANTOPEN)/);
    expect(await w.ask(`write ${file}`)).toBe('ok');
    expect(await r.ask(`read ${file}`)).toBe('ok');
    expect(await r.ask('count')).toBe('1');
  });

  test('folder 0770 (group-writable) is the trap: a reader creates -wal/-shm the writer cannot use', async () => {
    fs.chmodSync(site, 0o770);
    const file = path.join(site, 'raw.db');
    const w = agent(WRITER);
    expect(await w.ask(`write ${file}`)).toBe('ok');
    expect(await w.ask('append 1000')).toBe('ok');
    expect(await w.ask('close')).toBe('ok');
    const r = agent(READER);
    expect(await r.ask(`read ${file}`)).toBe('ok');
    expect(await r.ask('count')).toBe('1');
    // SQLite gave them the database file's mode (0640) but the reader's uid: read-only for the writer.
    expect(ls()['raw.db-shm']).toBe(`${READER}:${GROUP} 640`);
    // It opens (reading works), but cannot commit: its commits fail and are retried until somebody fixes the files.
    const opened = await w.ask(`write ${file}`);
    if (opened === 'ok') expect(await w.ask('append 2000')).toMatch(/^error /);
    else expect(opened).toMatch(/^error /);
  });
});
