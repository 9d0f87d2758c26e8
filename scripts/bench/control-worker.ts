/**
 * The LocalControl benchmark's observer component (./control.ts):
 *
 *   node bench-control-worker.js --port P --site S --telemetry INV-01,INV-02 --control IO-01,INV-02
 *
 * Run by the local runtime from a recipe, with the unmodified SDK client built from the environment
 * the nucleus gives it. It subscribes to exactly the topics the benchmark times (raw telemetry and
 * alarms of the `--telemetry` assets; control commands, results and decisions of the `--control`
 * assets) and forwards a short line per message, stamped with its arrival (Date.now(), the clock
 * every component stamps its messages with), to the benchmark over a loopback TCP connection.
 * The benchmark drives the plant and must react to what it sees while a trial runs, so the lines
 * go out as the messages arrive rather than into a result file at the end. It exits 0 when the
 * benchmark closes the connection.
 */
import { parseArgs } from 'node:util';
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { topics } from '../../components/lib/contract';
import { connectObserver } from './observer-link';

const RECEIVE_ALL = greengrasscoreipc.model.ReceiveMode.RECEIVE_ALL_MESSAGES;

/** One message as the benchmark sees it: `k` its kind, `a` the asset, `at` its arrival here (ms since epoch). */
export type ObservedEvent =
  | { k: 'ready' }
  | { k: 'error'; error: string }
  /** Raw telemetry: the poll's sample time and the two points the scenarios change. */
  | { k: 'tel'; a: string; at: number; ts: number; seq: number; evt1: string | null; tmpSnk: number | null }
  | { k: 'alarm'; a: string; at: number; ts: number; id: string; type: string; severity: string; state: string; replayed: boolean }
  | { k: 'cmd'; a: string; at: number; ts: number; id: string; action: string; params: Record<string, unknown> }
  | { k: 'res'; a: string; at: number; ts: number; id: string; status: string; durationMs: number | null; message: string }
  | { k: 'dec'; a: string; at: number; ts: number; id: string | null; ruleId: string; action: string; outcome: string; latencyMs: number | null; reason: string };

function messageOf(ev: greengrasscoreipc.model.SubscriptionResponseMessage): Record<string, unknown> | undefined {
  const m: unknown = ev.jsonMessage?.message;
  return typeof m === 'object' && m !== null ? (m as Record<string, unknown>) : undefined;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' ? v : Number.NaN);
const numOrNull = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const pointValue = (m: Record<string, unknown>, name: string): unknown => {
  const pts = m['points'];
  if (typeof pts !== 'object' || pts === null) return undefined;
  const p = (pts as Record<string, unknown>)[name];
  return typeof p === 'object' && p !== null ? (p as Record<string, unknown>)['v'] : undefined;
};

function toEvent(kind: 'tel' | 'alarm' | 'cmd' | 'res' | 'dec', at: number, m: Record<string, unknown>): ObservedEvent {
  const a = str(m['assetId']);
  const ts = num(m['ts']);
  switch (kind) {
    case 'tel': {
      const evt1 = pointValue(m, '103.Evt1');
      return { k: 'tel', a, at, ts, seq: num(m['seq']), evt1: typeof evt1 === 'string' ? evt1 : null, tmpSnk: numOrNull(pointValue(m, '103.TmpSnk')) };
    }
    case 'alarm':
      return { k: 'alarm', a, at, ts, id: str(m['alarmId']), type: str(m['type']), severity: str(m['severity']), state: str(m['state']), replayed: m['replayed'] === true };
    case 'cmd':
      return { k: 'cmd', a, at, ts, id: str(m['commandId']), action: str(m['action']), params: (m['params'] as Record<string, unknown>) ?? {} };
    case 'res':
      return { k: 'res', a, at, ts, id: str(m['commandId']), status: str(m['status']), durationMs: numOrNull(m['durationMs']), message: str(m['message']).slice(0, 200) };
    case 'dec':
      return {
        k: 'dec', a, at, ts,
        id: typeof m['commandId'] === 'string' ? m['commandId'] : null,
        ruleId: str(m['ruleId']), action: str(m['action']), outcome: str(m['outcome']), latencyMs: numOrNull(m['latencyMs']), reason: str(m['reason']).slice(0, 200),
      };
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    strict: true,
    options: { port: { type: 'string' }, site: { type: 'string' }, telemetry: { type: 'string' }, control: { type: 'string' }, name: { type: 'string' } },
  });
  const site = values.site ?? 's1';
  const list = (v: string | undefined): string[] => (v ?? '').split(',').filter((x) => x !== '');
  const { send, client } = await connectObserver<ObservedEvent>(Number(values.port));

  const subs: Array<[string, 'tel' | 'alarm' | 'cmd' | 'res' | 'dec']> = [];
  for (const a of list(values.telemetry)) subs.push([topics.rawTelemetry(site, a), 'tel'], [topics.alarms(site, a), 'alarm']);
  for (const a of list(values.control)) subs.push([topics.controlCommand(site, a), 'cmd'], [topics.controlResult(site, a), 'res'], [topics.controlDecision(site, a), 'dec']);
  for (const [topic, kind] of subs) {
    const op = client.subscribeToTopic({ topic, receiveMode: RECEIVE_ALL });
    op.on('message', (ev) => {
      const at = Date.now();
      const m = messageOf(ev);
      if (m) send(toEvent(kind, at, m));
    });
    await op.activate();
  }
  send({ k: 'ready' });
}

main().catch((err: unknown) => {
  process.stderr.write(`control bench observer failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
