/**
 * LocalControl's configuration (components/local-control/config.ts, rules.ts): the defaults are
 * valid and are the specification's rules; a bad rule is refused by the spec's check (what a
 * deployment's validation runs) with the key and what is allowed.
 */
import { validateConfig } from '../../components/lib/config';
import { ConfigError } from '../../components/lib/errors';
import { LOCAL_CONTROL_DEFAULTS, localControlConfigSpec } from '../../components/local-control/config';

function refusal(over: Record<string, unknown>): ConfigError {
  try {
    validateConfig(localControlConfigSpec, over);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const alarm = { source: 'alarm', alarmType: 'over_temperature' };
const curtail = { action: 'curtail', params: { percent: 50, revertSeconds: 300 } };

test('the defaults validate and hold the specification\'s rules', () => {
  const c = validateConfig(localControlConfigSpec, {});
  expect(c).toEqual(LOCAL_CONTROL_DEFAULTS);
  expect(c.rules.map((r) => `${r.id}: ${r.action}`)).toEqual([
    'curtail-over-temperature: curtail',
    'isolate-string-insulation-fault: isolate_string',
    'isolate-string-low-current: isolate_string',
    'emergency-shutdown-fire: shutdown',
    'breaker-trip-fire: trip',
    'shutdown-ground-fault: shutdown',
  ]);
  expect(c.maxInputAgeMs).toBe(10000);
  expect(c.maxCurtailedShare).toBe(0.5);
  expect(c.rateLimit).toEqual({ maxActions: 6, windowMs: 600000 });
  expect(c.outputs.relays).toEqual({ critical: { assetId: 'IO-01', point: 'relay.alarmHorn' }, high: { assetId: 'IO-01', point: 'relay.beacon' } });
});

test.each([
  { what: 'curtail without percent', rule: { id: 'r', condition: alarm, action: 'curtail', params: { revertSeconds: 300 } }, key: 'rules[0].params.percent', msg: /must be a number from 0 to 100/ },
  { what: 'curtail to 150 %', rule: { id: 'r', condition: alarm, action: 'curtail', params: { percent: 150, revertSeconds: 300 } }, key: 'rules[0].params.percent', msg: /from 0 to 100/ },
  { what: 'curtail without a revert timer', rule: { id: 'r', condition: alarm, action: 'curtail', params: { percent: 50, revertSeconds: 0 } }, key: 'rules[0].params.revertSeconds', msg: /integer from 10 to 65535 .*never sets a limit that outlives the gateway/ },
  { what: 'a released shutdown', rule: { id: 'r', condition: alarm, action: 'shutdown', release: { holdOffMs: 1000 } }, key: 'rules[0].release', msg: /shutdown is never released automatically \(an operator starts again\)/ },
  { what: 'a released trip', rule: { id: 'r', condition: alarm, action: 'trip', params: { point: 'relay.breakerTrip' }, release: { holdOffMs: 1000 } }, key: 'rules[0].release', msg: /trip is never released automatically/ },
  { what: 'a trip without its relay', rule: { id: 'r', condition: alarm, action: 'trip' }, key: 'rules[0].params.point', msg: /is required for action "trip"/ },
  { what: 'percent on a shutdown', rule: { id: 'r', condition: alarm, action: 'shutdown', params: { percent: 10 } }, key: 'rules[0].params.percent', msg: /is not allowed for action "shutdown" \(it takes no parameters\)/ },
  { what: 'an alarm condition without alarmType', rule: { id: 'r', condition: { source: 'alarm' }, ...curtail }, key: 'rules[0].condition.alarmType', msg: /is required for source "alarm"/ },
  { what: 'an alarm condition with points', rule: { id: 'r', condition: { ...alarm, points: ['x'] }, ...curtail }, key: 'rules[0].condition.points', msg: /is not allowed for source "alarm"/ },
  { what: 'a value condition without points', rule: { id: 'r', condition: { source: 'value', op: 'above', limit: 1 }, ...curtail }, key: 'rules[0].condition.points', msg: /is required for source "value"/ },
  { what: 'above without a limit', rule: { id: 'r', condition: { source: 'value', points: ['t'], op: 'above' }, ...curtail }, key: 'rules[0].condition.limit', msg: /is required for op "above"/ },
  { what: 'hasBit with a limit', rule: { id: 'r', condition: { source: 'value', points: ['s'], op: 'hasBit', bit: 'x', limit: 3 }, ...curtail }, key: 'rules[0].condition.limit', msg: /is not allowed for op "hasBit" \(it takes bit\)/ },
  { what: 'a value condition without op', rule: { id: 'r', condition: { source: 'value', points: ['s'] }, ...curtail }, key: 'rules[0].condition.op', msg: /is required \(one of above, below, hasBit, equals\)/ },
  { what: 'analytics without kind', rule: { id: 'r', condition: { source: 'analytics', op: 'below', limit: 70 }, ...curtail }, key: 'rules[0].condition.kind', msg: /is required for source "analytics"/ },
  { what: 'analytics with hasBit', rule: { id: 'r', condition: { source: 'analytics', kind: 'health_score', op: 'hasBit', bit: 'x' }, ...curtail }, key: 'rules[0].condition.op', msg: /must be one of above, below/ },
  { what: 'ml without model', rule: { id: 'r', condition: { source: 'ml', op: 'above', limit: 0.9 }, ...curtail }, key: 'rules[0].condition.model', msg: /is required for source "ml"/ },
  { what: 'isolate_string on an analytics result', rule: { id: 'r', condition: { source: 'analytics', kind: 'string_imbalance', op: 'above', limit: 0.2 }, action: 'isolate_string' }, key: 'rules[0].condition.source', msg: /must be "value" or "alarm" for action "isolate_string"/ },
  { what: 'a guard without its limit', rule: { id: 'r', condition: { ...alarm, while: [{ assets: ['WS-*'], points: ['poa'], op: 'above' }] }, ...curtail }, key: 'rules[0].condition.while[0].limit', msg: /is required for op "above"/ },
  { what: 'an unknown action (schema)', rule: { id: 'r', condition: alarm, action: 'explode' }, key: 'rules.0.action', msg: /must be one of "curtail", "restore", "isolate_string", "shutdown", "trip"/ },
  { what: 'an unknown condition key (schema)', rule: { id: 'r', condition: { ...alarm, severity: 'high' }, ...curtail }, key: 'rules.0.condition.severity', msg: /is not allowed here/ },
])('refused: $what -> $key', ({ rule, key, msg }) => {
  const e = refusal({ rules: [rule] });
  expect(e.key).toBe(key);
  expect(e.message).toMatch(msg);
  expect(e.message).toContain(key);
});

test('rule ids are unique', () => {
  const e = refusal({ rules: [{ id: 'a', condition: alarm, action: 'shutdown' }, { id: 'a', condition: alarm, action: 'shutdown' }] });
  expect(e.key).toBe('rules[1].id');
  expect(e.message).toMatch(/must be unique \("a" is also rules\[0\].id\)/);
});

test.each([
  { over: { resultTimeoutMs: 5000, commandTtlMs: 5000 }, key: 'resultTimeoutMs', msg: /must be longer than commandTtlMs/ },
  { over: { retryInitialMs: 5000, retryMaxMs: 1000 }, key: 'retryMaxMs', msg: /must be at least retryInitialMs/ },
  { over: { maxCurtailedShare: 1.5 }, key: 'maxCurtailedShare', msg: /must be <= 1/ },
  { over: { outputs: { relays: { siren: { assetId: 'IO-01', point: 'relay.spare4' } } } }, key: 'outputs.relays.siren', msg: /is not allowed here/ },
  { over: { outputs: { relays: {}, ackInput: { assetId: 'IO-01' } } }, key: 'outputs.ackInput.point', msg: /is required/ },
])('refused: $key', ({ over, key, msg }) => {
  const e = refusal(over);
  expect(e.key).toBe(key);
  expect(e.message).toMatch(msg);
});
