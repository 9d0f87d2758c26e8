/**
 * LocalControl's alarm notifications: routing per channel (minSeverity, which transitions),
 * escalation of critical alarms not acknowledged in time, what the e-mail and the SMS say (GSM 7-bit
 * limits, 3GPP TS 23.038), and the option checks (ConfigError naming the key, never quoting a
 * secret). FakeClock, in-memory channels, real SQLite files.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AlarmMessage } from '../../components/lib/contract';
import { ConfigError } from '../../components/lib/errors';
import { createLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { checkOutputsOptions, createAlarmOutputs, type AlarmOutputs, type AlarmOutputsOptions, type ChannelOptions } from '../../components/local-control/outputs';
import { mailBody, mailSubject, septets, smsText, splitSms, toGsmAscii } from '../../components/local-control/outputs/format';
import { routes } from '../../components/local-control/outputs/routing';
import { alarm, T0 } from '../../components/local-control/outputs/testing/alarms';
import { FakeChannel } from '../../components/local-control/outputs/testing/fake-channel';
import type { Notification } from '../../components/local-control/outputs/types';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lc-route-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const cleared = (id: string, over: Partial<AlarmMessage> = {}): AlarmMessage => alarm(id, { state: 'cleared', transition: 'cleared', transitionSeq: 2, ...over });
const updated = (id: string, over: Partial<AlarmMessage> = {}): AlarmMessage => alarm(id, { transition: 'updated', transitionSeq: 1, value: 90, ...over });

describe('routing', () => {
  test.each([
    ['critical', 'high', true],
    ['high', 'high', true],
    ['medium', 'high', false],
    ['low', 'high', false],
    ['low', 'low', true],
    ['critical', 'critical', true],
    ['high', 'critical', false],
  ] as const)('a %s alarm on a channel with minSeverity %s: %s', (sev, min, expected) => {
    expect(routes({ minSeverity: min, transitions: 'raisedAndCleared' }, alarm('a', { severity: sev }))).toBe(expected);
  });

  test('raised only, or raised and cleared; updates never; old producers without `transition`', () => {
    const raisedOnly = { minSeverity: 'low', transitions: 'raised' } as const;
    const both = { minSeverity: 'low', transitions: 'raisedAndCleared' } as const;
    expect(routes(raisedOnly, alarm('a'))).toBe(true);
    expect(routes(raisedOnly, cleared('a'))).toBe(false);
    expect(routes(both, cleared('a'))).toBe(true);
    expect(routes(both, updated('a'))).toBe(false);
    const legacy = alarm('a', { state: 'cleared' });
    delete legacy.transition;
    expect(routes(raisedOnly, legacy)).toBe(false);
    expect(routes(both, legacy)).toBe(true);
  });
});

interface EscRig {
  clock: FakeClock;
  lines: string[];
  ch: Map<string, FakeChannel>;
  outputs: AlarmOutputs;
  reopen(): AlarmOutputs;
}

function escRig(channels: ChannelOptions[], over: Partial<AlarmOutputsOptions> = {}): EscRig {
  const clock = new FakeClock(T0);
  const metrics = createMetrics({ clock });
  const lines: string[] = [];
  const logger = createLogger({}, { write: (l) => lines.push(l), now: () => clock.now() });
  const ch = new Map<string, FakeChannel>();
  const options: AlarmOutputsOptions = { dbPath: path.join(dir, 'n.db'), siteId: 'plant-7', channels, escalation: { escalateAfterMs: 15 * 60_000, channels: ['oncall'] }, ...over };
  const make = (): AlarmOutputs => {
    const o = createAlarmOutputs({ clock, logger, metrics, makeChannel: (c) => (ch.set(c.name, new FakeChannel(c.name, clock)), ch.get(c.name)) }, options);
    o.start();
    return o;
  };
  const r: EscRig = { clock, lines, ch, outputs: make(), reopen: () => (r.outputs = make()) };
  return r;
}

const hook = (name: string, over: Partial<ChannelOptions> = {}): ChannelOptions => ({ type: 'webhook', name, url: 'https://h.example.invalid/x', ...over }) as ChannelOptions;
const MIN = 60_000;

describe('routing through the outputs', () => {
  test('each channel gets what its routing selects', async () => {
    const r = escRig([hook('all'), hook('urgent', { minSeverity: 'high', transitions: 'raised' })], { escalation: undefined });
    r.outputs.offer(alarm('a1', { severity: 'low' }));
    r.outputs.offer(alarm('a2', { severity: 'critical' }));
    r.outputs.offer(updated('a2', { severity: 'critical' }));
    r.outputs.offer(cleared('a2', { severity: 'critical' }));
    await r.clock.advanceAsync(0);
    expect(r.ch.get('all')!.delivered).toEqual(['a1#0', 'a2#0', 'a2#2']);
    expect(r.ch.get('urgent')!.delivered).toEqual(['a2#0']);
    await r.outputs.close();
  });
});

describe('escalation', () => {
  const channels = [hook('mail', { minSeverity: 'low' }), hook('oncall', { minSeverity: 'critical', transitions: 'raised' })];

  test('a critical alarm not acknowledged within escalateAfterMs is notified again on the escalation channels, once', async () => {
    const r = escRig(channels);
    expect(r.outputs.offer(alarm('c1', { severity: 'critical' })).escalationPending).toBe(true);
    await r.clock.advanceAsync(15 * MIN - 1);
    expect(r.ch.get('oncall')!.delivered).toEqual(['c1#0']);
    await r.clock.advanceAsync(1);
    expect(r.ch.get('oncall')!.delivered).toEqual(['c1#0', 'esc:c1']);
    expect(r.ch.get('mail')!.delivered).toEqual(['c1#0']); // not an escalation channel
    expect(r.ch.get('oncall')!.sends[1]!.notifications[0]!.kind).toBe('escalation');
    expect(r.lines.some((l) => l.includes('critical alarm not acknowledged; escalating'))).toBe(true);
    await r.clock.advanceAsync(60 * MIN);
    // An update while escalated and a replay of the raise: no second escalation.
    r.outputs.offer(updated('c1', { severity: 'critical' }));
    r.outputs.offer(alarm('c1', { severity: 'critical', replayed: true }));
    await r.clock.advanceAsync(60 * MIN);
    expect(r.ch.get('oncall')!.delivered).toEqual(['c1#0', 'esc:c1']);
    expect(r.outputs.status().pendingEscalations).toBe(0);
    await r.outputs.close();
  });

  test('acknowledged, or cleared, in time: no escalation; other severities never escalate', async () => {
    const r = escRig(channels);
    r.outputs.offer(alarm('acked', { severity: 'critical' }));
    r.outputs.offer(alarm('gone', { severity: 'critical' }));
    r.outputs.offer(alarm('high', { severity: 'high' }));
    await r.clock.advanceAsync(5 * MIN);
    expect(r.outputs.acknowledge('acked', 'operator-1', r.clock.now())).toEqual({ escalationCancelled: true, withdrawn: 0, previous: 'pending' });
    r.outputs.offer(cleared('gone', { severity: 'critical', ts: r.clock.now() }));
    await r.clock.advanceAsync(60 * MIN);
    expect(r.ch.get('oncall')!.delivered).toEqual(['acked#0', 'gone#0']);
    expect(r.outputs.acknowledge('acked', 'operator-2', r.clock.now()).escalationCancelled).toBe(false);
    await r.outputs.close();
  });

  test('an acknowledgement that arrives before the raise still prevents the escalation', async () => {
    const r = escRig(channels);
    expect(r.outputs.acknowledge('early', 'hmi', T0).previous).toBe('unknown');
    r.outputs.offer(alarm('early', { severity: 'critical' }));
    await r.clock.advanceAsync(60 * MIN);
    expect(r.ch.get('oncall')!.delivered).toEqual(['early#0']);
    await r.outputs.close();
  });

  test('an acknowledgement withdraws escalation notifications not yet delivered', async () => {
    const r = escRig(channels);
    r.outputs.offer(alarm('c1', { severity: 'critical' }));
    await r.clock.advanceAsync(0);
    r.ch.get('oncall')!.behaviour = 'fail';
    await r.clock.advanceAsync(15 * MIN);
    expect(r.outputs.status().channels.find((c) => c.name === 'oncall')!.queued).toBe(1);
    expect(r.outputs.acknowledge('c1', 'operator-1', r.clock.now())).toEqual({ escalationCancelled: false, withdrawn: 1, previous: 'escalated' });
    r.ch.get('oncall')!.behaviour = 'accept';
    await r.clock.advanceAsync(10 * MIN);
    expect(r.ch.get('oncall')!.delivered).toEqual(['c1#0']);
    await r.outputs.close();
  });

  test('a pending escalation survives a restart and fires on time', async () => {
    const r = escRig(channels);
    r.outputs.offer(alarm('c1', { severity: 'critical' }));
    await r.clock.advanceAsync(10 * MIN);
    await r.outputs.close();
    r.reopen();
    await r.clock.advanceAsync(5 * MIN - 1);
    expect(r.ch.get('oncall')!.delivered).toEqual([]);
    await r.clock.advanceAsync(1);
    expect(r.ch.get('oncall')!.delivered).toEqual(['esc:c1']);
    await r.outputs.close();
  });

  test('an old critical alarm replayed (older than maxAgeMs) is neither notified nor escalated', async () => {
    const r = escRig(channels, { maxAgeMs: 3600_000 });
    await r.clock.advanceAsync(2 * 3600_000);
    expect(r.outputs.offer(alarm('old', { severity: 'critical', replayed: true }))).toMatchObject({ queued: [], escalationPending: false });
    await r.clock.advanceAsync(60 * MIN);
    expect(r.ch.get('oncall')!.delivered).toEqual([]);
    expect(r.outputs.status().pendingEscalations).toBe(0);
    await r.outputs.close();
  });

  test('acknowledge checks its arguments', async () => {
    const r = escRig(channels);
    expect(() => r.outputs.acknowledge('', 'x', 1)).toThrow(/alarmId/);
    expect(() => r.outputs.acknowledge('a', '', 1)).toThrow(/by must be/);
    expect(() => r.outputs.acknowledge('a', 'x', Number.NaN)).toThrow(/at must be/);
    await r.outputs.close();
  });
});

const note = (a: AlarmMessage, id = 1, kind: 'transition' | 'escalation' = 'transition'): Notification => ({ id, channel: 'c', kind, alarm: a, queuedAt: T0, attempts: 0, progress: null });
const fctx = { siteId: 'plant-7', siteName: 'Plant 7 Solar', escalateAfterMs: 15 * MIN };

describe('what the messages say', () => {
  test('mail subject: site, count, highest severity; body: one block per transition with every field', () => {
    const one = [note(alarm('a1', { severity: 'critical' }))];
    expect(mailSubject(one, fctx)).toBe('[Plant 7 Solar] CRITICAL raised: INV-01 over_temperature');
    const three = [note(alarm('a1', { severity: 'medium' }), 1), note(alarm('a2', { severity: 'critical', assetId: 'INV-02' }), 2), note(cleared('a3', { severity: 'low' }), 3)];
    expect(mailSubject(three, fctx)).toBe('[Plant 7 Solar] 3 alarm notifications, highest CRITICAL (2 raised, 1 cleared)');
    const body = mailBody(three, fctx);
    expect(body).toContain('Site Plant 7 Solar (plant-7): 3 alarm notifications, highest severity critical.');
    // Most severe first.
    expect(body.indexOf('1. CRITICAL RAISED: INV-02 over_temperature')).toBeGreaterThan(0);
    expect(body.indexOf('2. MEDIUM RAISED')).toBeGreaterThan(body.indexOf('1. CRITICAL'));
    expect(body).toContain('   Time:       2025-01-15T12:00:00.000Z');
    expect(body).toContain('   Site:       plant-7');
    expect(body).toContain('   Asset:      INV-02');
    expect(body).toContain('   Type:       over_temperature');
    expect(body).toContain('   Severity:   critical');
    expect(body).toContain('   Transition: cleared (#2)');
    expect(body).toContain('   Value:      85.2, threshold 80, point 103.TmpCab');
    expect(body).toContain('   Message:    Cabinet temperature above limit');
    expect(mailSubject([note(alarm('a1', { severity: 'critical' }), 1, 'escalation')], fctx)).toBe('[Plant 7 Solar] ESCALATION CRITICAL not acknowledged for 15 min: INV-01 over_temperature');
  });

  test('SMS text: most important first, one GSM-7 message of at most 160 characters', () => {
    const t = smsText(note(alarm('a1', { severity: 'critical', value: 85.23456789 })), fctx);
    expect(t).toBe('CRITICAL RAISED INV-01 over_temperature v=85.2346 thr=80 site Plant 7 Solar 2025-01-15T12:00:00Z: Cabinet temperature above limit');
    const long = smsText(note(alarm('a1', { message: 'x'.repeat(300) })), fctx);
    const [only, ...rest] = splitSms(long, 1);
    expect(rest).toEqual([]);
    expect(septets(only!)).toBe(160);
    expect(only!.startsWith('HIGH RAISED INV-01 over_temperature')).toBe(true);
    expect(only!.endsWith('..')).toBe(true);
  });

  test('GSM 7-bit: extension characters count twice, non-ASCII is transliterated, controls never pass', () => {
    expect(septets('[a]{b}')).toBe(10);
    expect(toGsmAscii('Überhitzung Wechselrichter ß æ ø `x` \u001a\u001b\n€ 温度')).toBe("Uberhitzung Wechselrichter ss ae o 'x' ? ??");
    const braces = splitSms('{'.repeat(100), 1)[0]!;
    expect(septets(braces)).toBeLessThanOrEqual(160);
    expect(braces).toBe('{'.repeat(79) + '..');
  });

  test('split into at most maxParts numbered messages of 160 characters, the last cut', () => {
    const words = Array.from({ length: 80 }, (_, i) => `word${i}`).join(' '); // ~550 characters
    const two = splitSms(words, 2);
    expect(two).toHaveLength(2);
    expect(two[0]!.startsWith('(1/2) word0 ')).toBe(true);
    expect(two[1]!.startsWith('(2/2) ')).toBe(true);
    expect(two[1]!.endsWith('..')).toBe(true);
    for (const p of two) expect(septets(p)).toBeLessThanOrEqual(160);
    const four = splitSms(words, 4);
    expect(four).toHaveLength(4);
    expect(four.every((p, i) => p.startsWith(`(${i + 1}/4) `) && septets(p) <= 160)).toBe(true);
    expect(four.join(' ').replace(/\(\d\/4\) /g, '')).toBe(words); // nothing lost when it fits
    expect(splitSms('short', 4)).toEqual(['short']);
  });
});

describe('options', () => {
  const base = (channels: unknown[], over: Record<string, unknown> = {}): AlarmOutputsOptions => ({ dbPath: '/tmp/x.db', siteId: 's', channels, ...over }) as AlarmOutputsOptions;
  const email = { type: 'email', name: 'mail', host: 'smtp.example.invalid', port: 587, tls: 'starttls', from: 'gw@example.invalid', to: ['ops@example.invalid'] };
  const fails = (o: AlarmOutputsOptions, key: string, msg: RegExp): string => {
    let err: unknown;
    try {
      checkOutputsOptions(o);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).key).toBe(key);
    expect((err as ConfigError).message).toMatch(msg);
    return (err as ConfigError).message;
  };

  test('valid options pass', () => {
    expect(() => checkOutputsOptions(base([email, { type: 'sms', name: 'sms', device: '/dev/ttyUSB2', numbers: ['+491701234567'] }, { type: 'webhook', name: 'h', url: 'https://x.example.invalid/a' }], { escalation: { escalateAfterMs: 900000, channels: ['sms'] } }))).not.toThrow();
  });

  test('bad options name the key and what is allowed, and never quote a secret', () => {
    fails(base([{ ...email, tls: 'ssl' }]), 'channels[0].tls', /one of "implicit", "starttls", "none"/);
    const m = fails(base([{ ...email, tls: 'none', user: 'u', password: 'hunter2-secret' }]), 'channels[0].tls', /must be "implicit" or "starttls" when user and password are set/);
    expect(m).not.toContain('hunter2');
    fails(base([{ ...email, user: 'u' }]), 'channels[0].password', /together/);
    fails(base([{ ...email, to: ['not an address'] }]), 'channels[0].to[0]', /e-mail address/);
    fails(base([{ type: 'sms', name: 'sms', device: '/dev/ttyUSB2', numbers: ['+49 170"; AT'] }]), 'channels[0].numbers[0]', /phone number/);
    fails(base([{ type: 'sms', name: 'sms', device: '/dev/x', numbers: ['123456'], maxParts: 5 }]), 'channels[0].maxParts', /1 to 4/);
    fails(base([{ type: 'sms', name: 'a', device: '/dev/x', numbers: ['123456'] }, { type: 'sms', name: 'b', device: '/dev/x', numbers: ['123456'], baudRate: 9600 }]), 'channels[1].baudRate', /same for every channel on \/dev\/x/);
    const u = fails(base([{ type: 'webhook', name: 'h', url: 'http://x.example.invalid/send?key=abc123secret' }]), 'channels[0].url', /https:\/\/ URL/);
    expect(u).not.toContain('abc123secret');
    fails(base([email, { ...email }]), 'channels[1].name', /unique/);
    fails(base([email], { escalation: { escalateAfterMs: 900000, channels: ['pager'] } }), 'escalation.channels[0]', /must name a channel \(one of "mail"\)/);
    fails(base([email], { configKey: 'notifications', maxQueued: 1 }), 'notifications.maxQueued', /integer from 10/);
  });
});
