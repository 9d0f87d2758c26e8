/**
 * Which alarm transitions a channel is told about, and the identity a notification is
 * de-duplicated on (docs/local-control-outputs.md "Routing").
 */
import { SEVERITIES, type AlarmMessage, type AlarmTransition, type Severity } from '../../lib/contract';

/** `raised`: raises only; `raisedAndCleared`: raises and clears. Updates are never notified. */
export const TRANSITION_ROUTES = ['raised', 'raisedAndCleared'] as const;
export type TransitionRoute = (typeof TRANSITION_ROUTES)[number];

export interface Route {
  minSeverity: Severity;
  transitions: TransitionRoute;
}

/** 0 for critical ... 3 for low: smaller is more important. */
export function severityRank(s: Severity): number {
  const i = SEVERITIES.indexOf(s);
  return i < 0 ? SEVERITIES.length : i;
}

/** The transition of an alarm message; older producers send only `state`. */
export function transitionOf(a: AlarmMessage): AlarmTransition {
  return a.transition ?? (a.state === 'cleared' ? 'cleared' : 'raised');
}

/**
 * Does this channel notify this transition? `updated` (the value of a raised alarm moved on) is
 * never notified: it would page someone for every new reading of an alarm they already know of.
 */
export function routes(route: Route, a: AlarmMessage): boolean {
  if (severityRank(a.severity) > severityRank(route.minSeverity)) return false;
  const t = transitionOf(a);
  if (t === 'raised') return true;
  return t === 'cleared' && route.transitions === 'raisedAndCleared';
}

/**
 * (alarmId, transitionSeq, channel): the contract names one transition by (alarmId,
 * transitionSeq) (docs/alarms.md); a producer without transitionSeq is identified by the
 * transition and its time instead.
 */
export function transitionKey(a: AlarmMessage, channel: string): string {
  const seq = a.transitionSeq ?? `${transitionOf(a)}@${a.ts}`;
  return JSON.stringify([a.alarmId, seq, channel]);
}

/** One escalation per alarm and channel. */
export function escalationKey(alarmId: string, channel: string): string {
  return JSON.stringify([alarmId, 'escalation', channel]);
}
