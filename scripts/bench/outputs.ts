/**
 * LocalControl alarm outputs: alarm -> e-mail accepted (docs/local-control-outputs.md "Figures").
 * Not wired into scripts/bench/index.ts; run it on its own:
 *
 *   npx esbuild scripts/bench/outputs.ts --bundle --platform=node --packages=external \
 *     --outfile=dist/bench-outputs.js && node dist/bench-outputs.js [--alarms 200] [--json]
 *
 * A real SMTP server (aiosmtpd, Debian python3-aiosmtpd, on a free loopback port, plain SMTP, no
 * AUTH) and the real library (createAlarmOutputs: SQLite queue, synchronous FULL, nodemailer) with
 * batching off (batchIntervalMs 0: one mail per transition). Latency = from `offer()` (the alarm
 * handed over) to the server's 250 after DATA reaching the channel (the mail accepted, the
 * notification leaves the queue). Two scenarios:
 *
 *   sequential  one alarm at a time, the next offered when the previous was accepted: the cost of
 *               one notification (queue write, SMTP connection, dialogue, queue delete);
 *   burst       all alarms offered at once (a plant trip): each waits for those before it, since a
 *               channel sends one mail at a time.
 *
 * Also counts what the server received: every alarm exactly once, else a problem (exit 1).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { systemClock } from '../../components/lib/clock';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { createAlarmOutputs, type DeliveredEvent } from '../../components/local-control/outputs';
import { startSmtpPeer, type SmtpPeer } from '../../components/local-control/outputs/testing/aiosmtpd';
import { alarm } from '../../components/local-control/outputs/testing/alarms';
import { describeMachine, formatMachine } from './machine';

interface Latency {
  alarms: number;
  /** The offer() call alone: validation, routing, the queue's transaction (synchronous FULL). */
  offerP50Ms: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  totalS: number;
}

function summary(samples: number[], totalMs: number, offers: number[]): Latency {
  const s = [...samples].sort((a, b) => a - b);
  const pct = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? 0;
  const r = (x: number): number => Math.round(x * 10) / 10;
  const o = [...offers].sort((a, b) => a - b);
  return { alarms: s.length, offerP50Ms: Math.round((o[Math.floor(o.length / 2)] ?? 0) * 100) / 100, p50Ms: r(pct(50)), p99Ms: r(pct(99)), maxMs: r(s[s.length - 1] ?? 0), meanMs: r(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)), totalS: Math.round(totalMs) / 1000 };
}

async function scenario(smtp: SmtpPeer, dir: string, name: string, count: number, burst: boolean, problems: string[]): Promise<Latency> {
  const offeredAt = new Map<string, number>();
  const latencies: number[] = [];
  const offers: number[] = [];
  let accepted: (() => void) | undefined;
  const onDelivered = (e: DeliveredEvent): void => {
    const now = performance.now();
    for (const n of e.notifications) {
      const t = offeredAt.get(n.alarm.alarmId);
      if (t !== undefined) latencies.push(now - t);
    }
    accepted?.();
  };
  const outputs = createAlarmOutputs(
    { clock: systemClock, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), onDelivered },
    {
      dbPath: path.join(dir, `${name}.db`),
      siteId: 'bench-site',
      channels: [{ type: 'email', name: 'mail', host: '127.0.0.1', port: smtp.port, tls: 'none', from: 'gateway@bench.example', to: ['ops@bench.example'], batchIntervalMs: 0 }],
    },
  );
  outputs.start();
  const before = smtp.messages.length;
  const ids = Array.from({ length: count }, (_, i) => `${name}-${i}`);
  const t0 = performance.now();
  const offer = (id: string): void => {
    const t = performance.now();
    offeredAt.set(id, t);
    outputs.offer(alarm(id, { ts: Date.now(), severity: 'critical' }));
    offers.push(performance.now() - t);
  };
  if (burst) {
    const all = new Promise<void>((resolve) => (accepted = () => latencies.length >= count && resolve()));
    for (const id of ids) offer(id);
    await all;
  } else {
    for (const id of ids) {
      const one = new Promise<void>((resolve) => (accepted = resolve));
      offer(id);
      await one;
    }
  }
  const total = performance.now() - t0;
  await outputs.close();
  const got = await smtp.waitForMessages(before + count, 10_000).catch(() => smtp.messages.slice());
  const received = got.slice(before).map((m) => m.headers['x-dcmms-alarm-ids']);
  const once = new Set(received);
  if (received.length !== count || once.size !== count || !ids.every((id) => once.has(id))) problems.push(`${name}: the server received ${received.length} mails for ${count} alarms (${once.size} distinct)`);
  return summary(latencies, total, offers);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { alarms: { type: 'string', default: '200' }, json: { type: 'boolean', default: false } } });
  const count = Math.max(1, Number(values.alarms));
  const log = (l: string): void => void (values.json ? process.stderr : process.stdout).write(l + '\n');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-outputs-'));
  const smtp = await startSmtpPeer();
  const problems: string[] = [];
  try {
    const machine = describeMachine();
    log(`machine: ${formatMachine(machine)}`);
    log(`alarm -> e-mail accepted by aiosmtpd (plain SMTP on loopback, batching off, synchronous FULL queue), ${count} alarms`);
    await scenario(smtp, dir, 'warmup', 20, false, problems);
    const sequential = await scenario(smtp, dir, 'sequential', count, false, problems);
    log(`  sequential  p50 ${sequential.p50Ms} ms  p99 ${sequential.p99Ms} ms  max ${sequential.maxMs} ms  (${(count / sequential.totalS).toFixed(0)} mails/s; offer() alone p50 ${sequential.offerP50Ms} ms)`);
    const burst = await scenario(smtp, dir, 'burst', count, true, problems);
    log(`  burst       p50 ${burst.p50Ms} ms  p99 ${burst.p99Ms} ms  max ${burst.maxMs} ms  (all ${count} accepted after ${burst.totalS} s, ${(count / burst.totalS).toFixed(0)} mails/s)`);
    for (const p of problems) log(`PROBLEM: ${p}`);
    if (values.json) process.stdout.write(JSON.stringify({ machine, alarms: count, sequential, burst, problems }) + '\n');
  } finally {
    await smtp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (problems.length) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
