/**
 * Operator requests (`site/{siteId}/operator/requests`; docs/local-control.md "Manual mode",
 * "Relays and acknowledgement", "Operators and automation"): every request is audited with what
 * came of it. `manual` / `automatic` take an asset out of automation and give it back,
 * `acknowledge` silences the horn for an alarm (and stops its notification escalation), and
 * `shutdown`, `start`, `curtail`, `restore` act on an asset directly (actuator.ts `operator`).
 */
import type { AlarmMessage, OperatorRequest } from '../lib/contract';
import type { Logger } from '../lib/logger';
import type { Actuator } from './actuator';
import type { LocalControlDb } from './db';
import type { AlarmNotifier } from './local-control';

export interface OperatorContext {
  now: number;
  db: LocalControlDb | undefined;
  act: Actuator;
  alarm: (alarmId: string) => AlarmMessage | undefined;
  /** The notification outputs (notifications.ts NotifierHost: it never throws). */
  outputs: Pick<AlarmNotifier, 'acknowledge'> | undefined;
  log: Logger;
  /** Runs a step that must not throw into the handler. */
  guarded: (fn: () => void, what: string) => void;
  /** Counts and logs a rejected request. */
  reject: (reason: string, detail: string) => void;
}

/** Records an acknowledgement (from the operator topic or the acknowledge input). */
export function acknowledge(ctx: OperatorContext, alarmId: string, by: string, at: number, request?: OperatorRequest): string {
  const active = ctx.alarm(alarmId);
  const r = ctx.act.operators.acknowledge(alarmId, by, at, active !== undefined);
  ctx.db?.audit({ ts: ctx.now, kind: 'acknowledge', assetId: active?.assetId, action: 'acknowledge', outcome: r, reason: `by ${by}`, entry: request ?? { alarmId, by, at } });
  if (r === 'done') {
    ctx.log.info('alarm acknowledged', { alarmId, by });
    const outputs = ctx.outputs;
    if (outputs) ctx.guarded(() => void outputs.acknowledge(alarmId, by, at), 'outputs acknowledge');
  }
  return r;
}

export function handleOperatorRequest(ctx: OperatorContext, req: OperatorRequest): void {
  const audit = (outcome: string, reason?: string): void =>
    ctx.db?.audit({ ts: ctx.now, kind: req.action === 'manual' || req.action === 'automatic' ? 'mode' : 'operator', assetId: req.assetId, action: req.action, outcome, reason: reason ?? req.reason, entry: req });
  ctx.log.info('operator request', { action: req.action, assetId: req.assetId, alarmId: req.alarmId, operator: req.operator, requestId: req.requestId });
  const asset = req.assetId ?? '';
  switch (req.action) {
    case 'manual':
      audit(ctx.act.setManual(asset, req.operator, ctx.now) ? 'manual' : 'already_manual');
      return;
    case 'automatic': {
      const r = ctx.act.operators.setAutomatic(asset);
      audit(r === 'done' ? 'automatic' : r, r === 'configured' ? `${asset} is manual by configuration (manualAssets); change the configuration instead` : undefined);
      return;
    }
    case 'acknowledge':
      acknowledge(ctx, req.alarmId ?? '', req.operator, req.ts, req);
      return;
    default: {
      const p = req.params ?? {};
      const percent = p['percent'];
      const revert = p['revertSeconds'];
      if (req.action === 'curtail' && (typeof percent !== 'number' || percent < 0 || percent > 100)) {
        audit('rejected', 'curtail needs params.percent, a number from 0 to 100');
        return ctx.reject('invalid_operator_request', `curtail without a valid params.percent (request ${req.requestId})`);
      }
      if (revert !== undefined && (typeof revert !== 'number' || !Number.isInteger(revert) || revert < 0 || revert > 65535)) {
        audit('rejected', 'params.revertSeconds must be an integer from 0 to 65535');
        return ctx.reject('invalid_operator_request', `bad params.revertSeconds (request ${req.requestId})`);
      }
      audit('accepted');
      ctx.act.operator(req, { ...(typeof percent === 'number' ? { percent } : {}), ...(typeof revert === 'number' ? { revertSeconds: revert } : {}) });
    }
  }
}
