/** Human-readable report of the IPC benchmark (./ipc.ts). */
import type { IpcBenchResult, ThroughputFigures } from './ipc';
import type { LatencyFigures } from './ipc-protocol';

/** Above this, something besides the benchmark competed for the CPU (the orchestrator itself uses ~5%). */
const DISTURBED_OTHER_CPU_PERCENT = 15;

const mib = (b: number): string => (b / 1024 ** 2).toFixed(1);
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (us: number): string => (us / 1000).toFixed(us < 10_000 ? 2 : 1);
const x = (r: number | undefined): string => (r === undefined ? 'n/a' : `${r.toFixed(2)}x`);

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
}

function throughputRow(t: ThroughputFigures): string[] {
  return [
    t.name,
    int(t.published.msgsPerS),
    t.published.mbPerS.toFixed(2),
    int(t.delivered.msgsPerS),
    t.delivered.mbPerS.toFixed(2),
    String(t.lost),
    `${ms(t.latencyUnderLoad.p50Us)} / ${ms(t.latencyUnderLoad.p99Us)}`,
    `${t.nucleusCpuUs.perPublish.toFixed(0)} / ${t.nucleusCpuUs.perDelivery.toFixed(0)}`,
    t.nucleus.cpuPercent.toFixed(0),
    t.componentsCpuPercent.publisher.toFixed(0),
    t.componentsCpuPercent.subscribers.toFixed(0),
    t.otherCpuPercent.toFixed(0),
    t.nucleus.machineBusyPercent.toFixed(0),
    `${mib(t.nucleus.rssMaxBytes)} / ${mib(t.nucleus.rssMeanBytes)}`,
  ];
}

function latencyLine(label: string, l: LatencyFigures): string {
  return `  ${label.padEnd(26)} p50 ${ms(l.p50Us)} ms   p99 ${ms(l.p99Us)} ms   max ${ms(l.maxUs)} ms   mean ${ms(l.meanUs)} ms   (${int(l.samples)} samples)`;
}

export function formatIpcReport(r: IpcBenchResult): string {
  const lines: string[] = [];
  lines.push(`IPC pub/sub through the local runtime: ${r.seconds} s per scenario, ${r.window} publishes in flight, fresh nucleus per scenario`);
  lines.push('');
  lines.push(
    ...table([
      ['scenario', 'pub msg/s', 'pub MB/s', 'deliv msg/s', 'deliv MB/s', 'lost', 'lat p50/p99 ms', 'nucleus µs/pub /deliv', 'CPU% nucleus', 'pub', 'subs', 'other', 'busy%', 'nucleus RSS max/mean MiB'],
      ...r.throughput.map(throughputRow),
    ]),
  );
  lines.push('  (MB = 10^6 bytes of the serialised message; deliveries summed over subscribers; latency = publish -> delivery under load;');
  lines.push('   nucleus µs = nucleus CPU time per published message / per delivery;');
  lines.push('   CPU% = process CPU time / wall time, 100 = one core; subs = all subscriber processes together; other = every');
  lines.push('   other process on the machine (more than a few % means the run was disturbed); busy% = all cores, 100 = saturated)');
  lines.push('');
  lines.push(`Latency, one ${r.latency.messageBytes} B message at a time, a component publishing to its own subscription:`);
  lines.push(latencyLine('publish call round trip', r.latency.publishRtt));
  lines.push(latencyLine('publish -> delivery', r.latency.delivery));
  lines.push(`  CPU%: nucleus ${r.latency.nucleus.cpuPercent.toFixed(0)}, component ${r.latency.componentCpuPercent.toFixed(0)}, other ${r.latency.otherCpuPercent.toFixed(0)}`);
  lines.push('');
  lines.push(`Nucleus RSS: ${mib(r.idleRssBytes)} MiB idle after start; ${mib(r.maxLoadRssBytes)} MiB max under load (${r.maxLoadScenario})`);
  lines.push('');
  lines.push('Ratios:');
  const q = r.ratios;
  lines.push(`  fan-out, deliveries/s 10 subs vs 1 sub:   100 B ${x(q['fanOutDelivered_100B_10vs1'])}   10 KB ${x(q['fanOutDelivered_10KB_10vs1'])}   (10.00x = no cost per extra subscriber)`);
  lines.push(`  fan-out, publishes/s 10 subs vs 1 sub:    100 B ${x(q['fanOutPublished_100B_10vs1'])}   10 KB ${x(q['fanOutPublished_10KB_10vs1'])}`);
  lines.push(`  fan-out, nucleus CPU per delivery 10 vs 1: 100 B ${x(q['nucleusCpuPerDelivery_100B_10vs1'])}   10 KB ${x(q['nucleusCpuPerDelivery_10KB_10vs1'])}   (0.10x = extra subscribers cost the nucleus nothing, 1.00x = each costs as much as the publish)`);
  lines.push(`  payload, delivered MB/s 10 KB vs 100 B:   1 sub ${x(q['deliveredMBps_10KBvs100B_1sub'])}   10 subs ${x(q['deliveredMBps_10KBvs100B_10sub'])}`);
  lines.push(`  payload, delivered msg/s 10 KB vs 100 B:  1 sub ${x(q['deliveredMsgs_10KBvs100B_1sub'])}   10 subs ${x(q['deliveredMsgs_10KBvs100B_10sub'])}`);
  const late = r.throughput.filter((t) => t.deliveredAfterDone > 0);
  if (late.length) {
    lines.push('');
    lines.push(
      `Note: ${late.map((t) => `${t.name}: ${int(t.deliveredAfterDone)}`).join(', ')} deliveries reached their subscriber after the publisher's later` +
        ` 'done' message on another subscription of the same connection (not lost: order is kept per subscription, not across them).`,
    );
  }
  const other = Math.max(r.latency.otherCpuPercent, ...r.throughput.map((t) => t.otherCpuPercent));
  if (other > DISTURBED_OTHER_CPU_PERCENT) {
    lines.push('');
    lines.push(`WARNING: other processes used up to ${other.toFixed(0)}% CPU during a scenario; these figures are disturbed, run again on a quiet machine.`);
  }
  if (r.correctnessProblems.length) {
    lines.push('');
    lines.push('CORRECTNESS PROBLEMS:');
    for (const p of r.correctnessProblems) lines.push(`  ${p}`);
  }
  return lines.join('\n');
}
