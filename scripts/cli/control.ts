/**
 * `dcmms-edge control`: an operator's hand on LocalControl from a shell (docs/local-control.md).
 *
 *   control manual    --root DIR --asset A [--reason TEXT] [--operator NAME]   take A out of automation
 *   control automatic --root DIR --asset A [--reason TEXT] [--operator NAME]   give A back to automation
 *   control ack       --root DIR --alarm ID [--operator NAME]                   acknowledge an alarm (silences the horn)
 *   control log       --db FILE [--asset A] [--since ISO] [--limit N] [--json]  LocalControl's audit log
 *
 * manual/automatic/ack publish an OperatorRequest on the contract's operator topic through the local
 * runtime's IPC socket with the CLI's token (the runtime lets the CLI publish exactly that topic;
 * docs/local-runtime.md). On a gateway, operators use the local HMI, or set LocalControl's
 * `manualAssets` by deployment.
 */
import { randomUUID } from 'node:crypto';
import { CONTRACT_VERSION, topics, validateOperatorRequest, type OperatorRequest } from '../../components/lib/contract';
import { CliUsageError, parseCommand, requireRoot } from './args';
import { CONTROL_ACK, CONTROL_AUTOMATIC, CONTROL_LOG, CONTROL_MANUAL } from './commands';
import { describeError, withNucleus } from './session';

export async function runControl(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const spec = { manual: CONTROL_MANUAL, automatic: CONTROL_AUTOMATIC, ack: CONTROL_ACK, log: CONTROL_LOG }[sub ?? ''];
  if (!spec) throw new CliUsageError(`control takes manual, automatic, ack or log, not '${sub ?? ''}'`);
  const { values } = parseCommand(spec, rest);
  switch (sub) {
    case 'manual':
    case 'automatic':
    case 'ack':
      return request(sub === 'ack' ? 'acknowledge' : sub, values);
    case 'log':
      return log(values);
    default:
      throw new CliUsageError(`control takes manual, automatic, ack or log, not '${sub ?? ''}'`);
  }
}

type Values = Record<string, string | boolean | string[] | undefined>;

async function request(action: 'manual' | 'automatic' | 'acknowledge', values: Values): Promise<number> {
  const root = requireRoot(values);
  const siteId = (values['site'] as string | undefined) ?? 'demo-site';
  const req: OperatorRequest = {
    schemaVersion: CONTRACT_VERSION,
    siteId,
    ts: Date.now(),
    requestId: randomUUID(),
    operator: (values['operator'] as string | undefined) ?? `cli:${process.env['USER'] ?? 'operator'}`,
    action,
    ...(values['asset'] ? { assetId: values['asset'] as string } : {}),
    ...(values['alarm'] ? { alarmId: values['alarm'] as string } : {}),
    ...(values['reason'] ? { reason: values['reason'] as string } : {}),
  };
  const v = validateOperatorRequest(req);
  if (!v.ok) throw new CliUsageError(`control ${action === 'acknowledge' ? 'ack' : action}: ${v.reason} (--asset for manual/automatic, --alarm for ack; --site, default demo-site)`);
  return withNucleus(root, async (client) => {
    try {
      await client.publishToTopic({ topic: topics.operatorRequest(siteId), publishMessage: { jsonMessage: { message: req } } });
    } catch (e) {
      throw new Error(describeError(e));
    }
    process.stdout.write(`operator request ${req.requestId}: ${action}${req.assetId ? ` ${req.assetId}` : ''}${req.alarmId ? ` alarm ${req.alarmId}` : ''} sent to ${topics.operatorRequest(siteId)}\n`);
    return 0;
  });
}

async function log(values: Values): Promise<number> {
  const db = values['db'] as string | undefined;
  if (!db) throw new CliUsageError('control log needs --db FILE (LocalControl\'s database, e.g. .nucleus/work/com.dcmms.edge.LocalControl/local-control.db)');
  const since = values['since'] !== undefined ? Date.parse(values['since'] as string) : undefined;
  if (since !== undefined && !Number.isFinite(since)) throw new CliUsageError(`--since must be an ISO time, not ${String(values['since'])}`);
  const limit = values['limit'] !== undefined ? Number(values['limit']) : 100;
  if (!Number.isInteger(limit) || limit < 1) throw new CliUsageError('--limit must be a positive integer');
  const { readAuditLog } = await import('../../components/local-control/db');
  const rows = readAuditLog(db, { ...(values['asset'] ? { assetId: values['asset'] as string } : {}), ...(since !== undefined ? { since } : {}), limit });
  for (const r of rows) {
    if (values['json']) {
      process.stdout.write(JSON.stringify(r) + '\n');
      continue;
    }
    const inputs = ((r.entry as { inputs?: Array<{ ref: string; value: unknown; ts: number }> } | null)?.inputs ?? [])
      .map((i) => `${i.ref}=${String(i.value)}@${new Date(i.ts).toISOString().slice(11, 23)}`)
      .join(' ');
    const cols = [new Date(r.ts).toISOString(), r.kind.padEnd(11), (r.assetId ?? '-').padEnd(10), (r.ruleId ?? '-').padEnd(26), (r.action ?? '-').padEnd(15), (r.outcome ?? '-').padEnd(9)];
    const tail = [r.reason ?? '', r.latencyMs !== null ? `${r.latencyMs} ms` : '', inputs].filter(Boolean).join('  ');
    process.stdout.write(`${cols.join(' ')} ${tail}\n`);
  }
  return 0;
}
