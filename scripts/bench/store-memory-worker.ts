/**
 * Where a store-writing process's memory goes (run by ./store-memory.ts, one process per
 * scenario, so nothing else lives in the process): appends `rate` samples/s of `series` series with
 * the real clock, commits every window and seals on the maintenance timer as the Processor's store
 * does, and prints one JSON line per second:
 *
 *   rss, RssAnon, RssFile    /proc/self/status
 *   mallocHeap               Rss of the `[heap]` mapping: glibc's main arena, where SQLite's page
 *                            cache and statements live (SQLite is built with SYSTEM_MALLOC and
 *                            MEMSTATUS=0, so it cannot report its own use; V8 never allocates there)
 *   otherAnon                Rss of the other anonymous mappings: V8's spaces, glibc's mmap'd
 *                            blocks (>= 128 KiB: ArrayBuffers' backing stores) and thread arenas
 *   heapTotal, heapUsed, external, arrayBuffers, newSpace, oldSpace   process.memoryUsage(), v8
 *   db, wal, shm             file sizes; pageSize, cacheSize, mmapSize, journalSizeLimit pragmas
 *
 * Usage: node store-memory-worker.js '<json options>'   (see WorkerOptions)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { systemClock, type Clock } from '../../components/lib/clock';
import { openStore, type Store, type StoreSample } from '../../components/lib/store';

export interface WorkerOptions {
  /** Samples per second offered. */
  rate: number;
  seconds: number;
  series: number;
  /** undefined: the store's default. */
  cacheBytes?: number;
  sealIntervalMs?: number;
  sealLagMs?: number;
  /** false: generate the same samples and drop them (the process without a store). */
  store: boolean;
}

const opts = JSON.parse(process.argv[2] ?? '{}') as WorkerOptions;
const out = (o: unknown): void => void fs.writeSync(1, `${JSON.stringify(o)}\n`);

function smaps(): { mallocHeap: number; otherAnon: number; file: number } {
  let mallocHeap = 0;
  let otherAnon = 0;
  let file = 0;
  let kind: 'heap' | 'anon' | 'file' = 'anon';
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      const name = (head[2] ?? '').trim();
      kind = name === '[heap]' ? 'heap' : head[1] === '0' && !name.startsWith('/') ? 'anon' : 'file';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB$/.exec(line);
    if (!rss) continue;
    const b = Number(rss[1]) * 1024;
    if (kind === 'heap') mallocHeap += b;
    else if (kind === 'anon') otherAnon += b;
    else file += b;
  }
  return { mallocHeap, otherAnon, file };
}

function status(): Record<string, number> {
  const text = fs.readFileSync('/proc/self/status', 'utf8');
  const get = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { rss: get('VmRSS'), rssAnon: get('RssAnon'), rssFile: get('RssFile'), hwm: get('VmHWM') };
}

const size = (f: string): number => {
  try {
    return fs.statSync(f).size;
  } catch {
    return 0;
  }
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-store-mem-'));
const file = path.join(dir, 'raw.db');
let store: Store | undefined;
/** The longest store timer callback (commit or maintenance tick) this second, and what it did. */
let longest = { ms: 0, what: '' };
const what = (): string => {
  if (!store) return '';
  const c = store.counters();
  return `${c.commits}/${c.sealedSamples}/${c.reclaimedPages}/${c.retentionDeletedChunks}`;
};
const timedClock: Clock = {
  ...systemClock,
  setTimeout: (fn, ms) =>
    systemClock.setTimeout(() => {
      const before = what();
      const t0 = performance.now();
      fn();
      const d = performance.now() - t0;
      if (d > longest.ms) {
        const [c0, s0, r0] = before.split('/').map(Number) as [number, number, number];
        const [c1, s1, r1] = what().split('/').map(Number) as [number, number, number];
        longest = { ms: d, what: [c1 > c0 ? 'commit' : '', s1 > s0 ? 'seal' : '', r1 > r0 ? 'reclaim' : ''].filter(Boolean).join('+') || 'other' };
      }
    }, ms),
};
if (opts.store) {
  store = openStore(
    { path: file, clock: timedClock },
    {
      ...(opts.cacheBytes !== undefined ? { cacheBytes: opts.cacheBytes } : {}),
      ...(opts.sealIntervalMs !== undefined ? { sealIntervalMs: opts.sealIntervalMs } : {}),
      ...(opts.sealLagMs !== undefined ? { sealLagMs: opts.sealLagMs } : {}),
    },
  );
}

const perMessage = 100;
const msgs: StoreSample[][] = [];
for (let a = 0; a < Math.ceil(opts.series / perMessage); a++) msgs.push(Array.from({ length: perMessage }, (_, p) => ({ assetId: `inv-${a}`, point: `p${p}`, ts: 0, v: 0, q: 'good' as const })));

const start = Date.now();
const TICK_MS = 10;
let offered = 0;
let next = 0;
let dropped = 0;
let peakLagMs = 0;

function sample(): void {
  const mu = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
  const row: Record<string, number | string> = {
    t: Date.now() - start,
    offered,
    ...status(),
    ...smaps(),
    heapTotal: mu.heapTotal,
    heapUsed: mu.heapUsed,
    external: mu.external,
    arrayBuffers: mu.arrayBuffers,
    newSpace: spaces['new_space'] ?? 0,
    oldSpace: spaces['old_space'] ?? 0,
    peakLagMs,
    longestTimerMs: Math.round(longest.ms),
    longestTimer: longest.what,
  };
  peakLagMs = 0;
  longest = { ms: 0, what: '' };
  if (store) {
    const c = store.counters();
    Object.assign(row, {
      pending: store.pending,
      committed: c.committed,
      sealed: c.sealedSamples,
      reclaimedPages: c.reclaimedPages,
      storeRejected: Object.values(c.rejected).reduce((a, b) => a + b, 0),
      db: size(file),
      wal: size(`${file}-wal`),
      shm: size(`${file}-shm`),
      pageSize: store.db.pragma('page_size', { simple: true }) as number,
      cacheSize: store.db.pragma('cache_size', { simple: true }) as number,
      mmapSize: store.db.pragma('mmap_size', { simple: true }) as number,
      journalSizeLimit: store.db.pragma('journal_size_limit', { simple: true }) as number,
      freePages: store.db.pragma('freelist_count', { simple: true }) as number,
    });
  }
  out(row);
}

// Messages go out every TICK_MS as the schedule says; a late tick sends what it owes (a burst).
function tick(): void {
  const now = Date.now() - start;
  if (now >= opts.seconds * 1000) return finish();
  peakLagMs = Math.max(peakLagMs, now - next);
  const owe = Math.floor((now * opts.rate) / 1000) - offered;
  let sent = 0;
  let m = Math.floor(offered / perMessage);
  while (sent < owe) {
    const msg = msgs[m % msgs.length] as StoreSample[];
    const ts = start + Math.floor((m * perMessage) / opts.series) * Math.max(1, Math.floor((opts.series * 1000) / opts.rate));
    for (let i = 0; i < msg.length; i++) {
      const s = msg[i] as StoreSample;
      s.ts = ts;
      s.v = ((ts / 1000 + i) % 977) / 10;
    }
    if (store) store.append(msg);
    else dropped += msg.length;
    sent += msg.length;
    m += 1;
  }
  offered += sent;
  next = now + TICK_MS;
  setTimeout(tick, TICK_MS);
}

const sampler = setInterval(sample, 1000);

function finish(): void {
  clearInterval(sampler);
  sample();
  store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
  out({ done: true, offered, dropped });
}

sample();
tick();
