/** Alarm transitions for the alarm-output tests and the benchmark. */
import type { AlarmMessage } from '../../../lib/contract';

export const T0 = Date.UTC(2025, 0, 15, 12, 0, 0);

export function alarm(id: string, over: Partial<AlarmMessage> = {}): AlarmMessage {
  return {
    schemaVersion: 1,
    siteId: 'plant-7',
    assetId: 'INV-01',
    alarmId: id,
    type: 'over_temperature',
    severity: 'high',
    state: 'raised',
    transition: 'raised',
    transitionSeq: 0,
    ts: T0,
    source: 'processor',
    point: '103.TmpCab',
    value: 85.2,
    threshold: 80,
    message: 'Cabinet temperature above limit',
    ...over,
  };
}
