/**
 * LocalControl's SMS notifications through a modem on a serial line. The modem is OUR EMULATOR
 * (components/local-control/outputs/testing/modem-emulator.ts), not a real modem: it answers the AT
 * commands of SMS text mode (3GPP TS 27.005) on one end of a socat pseudo-terminal pair, and the
 * code under test opens the other end with the serialport package as it would a modem's
 * /dev/ttyUSB2. Errors (ERROR, +CMS ERROR), a refused number, a slow +CMGS, no answer at all, and
 * several numbers and channels sharing the one modem (one command at a time).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { systemClock } from '../../components/lib/clock';
import { createLogger } from '../../components/lib/logger';
import { createMetrics, type Metrics } from '../../components/lib/metrics';
import { createAlarmOutputs, type AlarmOutputs, type SmsChannelOptions } from '../../components/local-control/outputs';
import { septets } from '../../components/local-control/outputs/format';
import { alarm as fixed } from '../../components/local-control/outputs/testing/alarms';
import { startModemEmulator, type ModemEmulator } from '../../components/local-control/outputs/testing/modem-emulator';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const A = '+491701234567';
const B = '+436641234567';
let dir: string;
let modem: ModemEmulator;
let outputs: AlarmOutputs | undefined;
let lines: string[];
let metrics: Metrics;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-sms-'));
  modem = await startModemEmulator(dir);
});
afterEach(async () => {
  await outputs?.close();
  outputs = undefined;
  await modem.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const alarm = (id: string, over: Parameters<typeof fixed>[1] = {}) => fixed(id, { ts: Date.now(), ...over });

function start(channels: Array<Partial<SmsChannelOptions>> = [{}]): AlarmOutputs {
  lines = [];
  metrics = createMetrics({ clock: systemClock });
  outputs = createAlarmOutputs(
    { clock: systemClock, logger: createLogger({}, { write: (l) => lines.push(l) }), metrics },
    {
      dbPath: path.join(dir, 'q.db'),
      siteId: 'plant-7',
      backoffInitialMs: 100,
      backoffMaxMs: 400,
      channels: channels.map((c, i) => ({ type: 'sms', name: `sms-${i}`, device: modem.device, numbers: [A, B], commandTimeoutMs: 1000, sendTimeoutMs: 3000, ...c }) as SmsChannelOptions),
    },
  );
  outputs.start();
  return outputs;
}

const cmgs = (): string[] => modem.commands.filter((c) => c.startsWith('AT+CMGS'));

test('text mode, one SMS per number: AT, ATE0, AT+CMGF=1, then AT+CMGS with the text and Ctrl-Z', async () => {
  const o = start();
  o.offer(alarm('al-1', { severity: 'critical', assetId: 'INV-03', value: 91.5, threshold: 80 }));
  const got = await modem.waitForMessages(2);
  expect(got.map((m) => m.number)).toEqual([A, B]);
  expect(got[0]!.text).toMatch(/^CRITICAL RAISED INV-03 over_temperature v=91\.5 thr=80 site plant-7 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: Cabinet temperature above limit$/);
  expect(got[1]!.text).toBe(got[0]!.text);
  expect(modem.commands).toEqual(['AT', 'ATE0', 'AT+CMGF=1', 'AT+CSCS="IRA"', `AT+CMGS="${A}"`, `AT+CMGS="${B}"`]);
  expect(modem.violations).toEqual([]);
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
  expect(o.status().channels[0]).toMatchObject({ delivered: 1, consecutiveFailures: 0 });
});

test('two channels and several alarms share the one modem: one command at a time, nothing lost, nothing doubled', async () => {
  const o = start([{ numbers: [A] }, { numbers: [B], minSeverity: 'high' }]);
  modem.urc('+CMTI: "SM",3'); // unsolicited result codes between commands are ignored
  for (let i = 0; i < 5; i++) o.offer(alarm(`al-${i}`, { severity: i % 2 ? 'high' : 'low', assetId: `INV-0${i}` }));
  modem.urc('RING');
  // sms-0 takes all five, sms-1 the two high ones.
  const got = await modem.waitForMessages(7);
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
  expect(modem.violations).toEqual([]);
  expect(got.filter((m) => m.number === A)).toHaveLength(5);
  expect(got.filter((m) => m.number === B)).toHaveLength(2);
  expect(new Set(got.map((m) => `${m.number} ${m.text}`)).size).toBe(7);
  expect(cmgs()).toHaveLength(7);
  // The modem was initialised once for both channels.
  expect(modem.commands.filter((c) => c === 'AT+CMGF=1')).toHaveLength(1);
});

test('ERROR and +CMS ERROR from the modem or network: retried with backoff; each number gets the SMS once', async () => {
  const o = start();
  modem.next = [{ cms: 38 }, 'error'];
  o.offer(alarm('al-1'));
  const got = await modem.waitForMessages(2);
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
  expect(got.map((m) => m.number)).toEqual([A, B]);
  expect(cmgs()).toEqual([`AT+CMGS="${A}"`, `AT+CMGS="${A}"`, `AT+CMGS="${A}"`, `AT+CMGS="${B}"`]);
  expect(lines.some((l) => l.includes('MODEM_CMS_38'))).toBe(true);
  expect(metrics.snapshot().errors).toBe(2);
});

test('a number the network refuses (+CMS ERROR: 1, unassigned number) is counted and not retried; the others get it', async () => {
  const o = start();
  modem.refuse.set(A, 1);
  o.offer(alarm('al-1'));
  await modem.waitForMessages(1);
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
  expect(modem.messages.map((m) => m.number)).toEqual([B]);
  expect(cmgs()).toEqual([`AT+CMGS="${A}"`, `AT+CMGS="${B}"`]);
  expect(metrics.snapshot().dropped['notify_sms_number_refused']).toBe(1);
  const logged = lines.find((l) => l.includes('part of a notification refused'))!;
  expect(logged).toContain('...4567');
  expect(logged).not.toContain(A); // numbers are logged by their last four digits
  // Every number refused: the notification itself is dropped, counted.
  modem.refuse.set(B, 21);
  o.offer(alarm('al-2'));
  await waitFor(() => o.status().dropped['sms_refused'] === 1, 5000, 'refused notification dropped');
  expect(metrics.snapshot().dropped['notify_sms_refused']).toBe(1);
});

test('a slow +CMGS (1.5 s) is waited for: delivered once', async () => {
  const o = start([{ numbers: [A] }]);
  modem.cmgsDelayMs = 1500;
  const t = Date.now();
  o.offer(alarm('al-1'));
  await modem.waitForMessages(1);
  expect(Date.now() - t).toBeGreaterThanOrEqual(1500);
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
  expect(modem.messages).toHaveLength(1);
  expect(cmgs()).toHaveLength(1);
  expect(o.status().channels[0]!.consecutiveFailures).toBe(0);
});

test('no answer to a message: timeout, ESC and a fresh initialisation, then sent again', async () => {
  const o = start([{ numbers: [A], sendTimeoutMs: 500 }]);
  modem.next = ['silent'];
  o.offer(alarm('al-1'));
  await modem.waitForMessages(1);
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
  expect(modem.commands).toEqual(['AT', 'ATE0', 'AT+CMGF=1', 'AT+CSCS="IRA"', `AT+CMGS="${A}"`, 'AT', 'ATE0', 'AT+CMGF=1', 'AT+CSCS="IRA"', `AT+CMGS="${A}"`]);
  expect(lines.some((l) => l.includes('MODEM_TIMEOUT') && l.includes('no answer to the message text within 500 ms'))).toBe(true);
  expect(modem.messages).toHaveLength(1);
  expect(modem.violations).toEqual([]);
});

test('no prompt in time: the modem is still waiting for a text, so ESC cancels it before the next try', async () => {
  const o = start([{ numbers: [A], commandTimeoutMs: 300 }]);
  modem.promptDelayMs = 1000;
  o.offer(alarm('al-1'));
  await waitFor(() => lines.some((l) => l.includes('MODEM_TIMEOUT')), 5000, 'the prompt timeout');
  modem.promptDelayMs = 0;
  await modem.waitForMessages(1);
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
  expect(modem.messages).toHaveLength(1);
  expect(modem.messages[0]!.text).toMatch(/^HIGH RAISED INV-01/); // no leftover of the cancelled input
  expect(modem.violations).toEqual([]);
});

test('a +CMGS slower than sendTimeoutMs: sent again after the timeout (at least once: the SMS arrives twice)', async () => {
  const o = start([{ numbers: [A], sendTimeoutMs: 500, commandTimeoutMs: 300 }]);
  modem.cmgsDelayMs = 800;
  o.offer(alarm('al-1'));
  await modem.waitForMessages(1);
  modem.cmgsDelayMs = 0; // the network is fast again
  await modem.waitForMessages(2);
  await waitFor(() => o.status().queued === 0, 10_000, 'queue empty');
  expect(modem.messages.map((m) => m.text)).toEqual([modem.messages[0]!.text, modem.messages[0]!.text]);
  // Our re-initialisation usually reaches the modem while it still owes the first answer (what a
  // real one would get too); on a busy machine the retry's backoff can outlast the late answer. No
  // other protocol violation either way.
  expect(modem.violations.filter((v) => v !== 'command "AT" while an answer to a message was due')).toEqual([]);
});

test('split into numbered parts (maxParts 2); a part already accepted is not sent again after a failure', async () => {
  const o = start([{ numbers: [A], maxParts: 2 }]);
  modem.next = ['ok', { cms: 42 }]; // part 2 meets congestion once
  o.offer(alarm('al-1', { message: 'Cabinet temperature above limit on both fans; check the air filters and the fan supply fuse F3 before the afternoon peak. ' + 'x'.repeat(60) }));
  const got = await modem.waitForMessages(2);
  await waitFor(() => o.status().queued === 0, 5000, 'queue empty');
  expect(got.map((m) => m.text.slice(0, 6))).toEqual(['(1/2) ', '(2/2) ']);
  for (const m of got) expect(septets(m.text)).toBeLessThanOrEqual(160);
  expect(cmgs()).toHaveLength(3); // part 1, part 2 (congestion), part 2 again
});

test('a modem device that is not there: retried with backoff, nothing else affected', async () => {
  const o = start([{ device: path.join(dir, 'no-such-tty') }]);
  o.offer(alarm('al-1'));
  await waitFor(() => o.status().channels[0]!.consecutiveFailures >= 2, 5000, 'failed attempts');
  expect(o.status().channels[0]!.lastError).toMatch(/^MODEM_LINK: cannot open/);
  expect(o.status().queued).toBe(1);
});
