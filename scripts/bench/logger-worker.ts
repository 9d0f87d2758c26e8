/**
 * The logger benchmark's worker: logs a typical component line through the default destination
 * (fd 1) for the given seconds, then reports on fd 2 one JSON object: lines, wall ns, CPU µs.
 * The parent decides what fd 1 is (a file, or a pipe it drains). With `touch`, process.stdout is
 * touched before the logger exists, as a component's is (console.log, the SDK): Node then makes a
 * pipe on fd 1 non-blocking.
 *
 *   node dist/bench-logger-worker.js <seconds> [touch]
 */
import { writeSync } from 'node:fs';
import { createLogger } from '../../components/lib/logger';
import { typicalFields } from './logger-lines';

const seconds = Number(process.argv[2] ?? '2');
if (process.argv[3] === 'touch') void process.stdout;
const log = createLogger({ component: 'processor', version: '1.0.0' }).child({ module: 'processor' });
const fields = typicalFields();
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const end = t0 + BigInt(Math.round(seconds * 1e9));
let lines = 0;
for (;;) {
  // Batches of 1000 between clock reads, so hrtime is not part of the figure.
  for (let i = 0; i < 1000; i++) log.info('telemetry rejected', fields);
  lines += 1000;
  if (process.hrtime.bigint() >= end) break;
}
const wallNs = Number(process.hrtime.bigint() - t0);
const cpu = process.cpuUsage(cpu0);
writeSync(2, `${JSON.stringify({ lines, wallNs, cpuUs: cpu.user + cpu.system })}\n`);
