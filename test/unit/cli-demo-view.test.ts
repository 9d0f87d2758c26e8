/**
 * What the demo prints about the cloud and the local HMI (scripts/cli/demo-view.ts): gzip batches
 * as one readable line, health with why it is degraded, LocalHmi's address and first-start
 * credential from its log line (a fake one here: the component writes it at its first start).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { AlarmMessage, SiteHealthSummary, UplinkBatch } from '../../components/lib/contract';
import { HMI_FIRST_START_MSG, describeCloudMessage, readHmiInfo } from '../../scripts/cli/demo-view';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-view-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const alarm: AlarmMessage = {
  schemaVersion: 1, siteId: 'demo-site', assetId: 'INV-01', alarmId: 'a-1', type: 'string_underperformance', severity: 'medium', state: 'raised', transition: 'raised',
  ts: 1, source: 'analytics', point: '160.module.2.DCA', value: 0.1, message: 'string 2 at 10 % of its peers',
};

test('a gzip alarm batch is one line: kind, items, first alarm; never its bytes', () => {
  const batch: UplinkBatch = { schemaVersion: 1, siteId: 'demo-site', kind: 'alarms', seq: 7, createdAt: 1, items: [alarm, { ...alarm, alarmId: 'a-2', assetId: 'INV-02' }] };
  const payload = gzipSync(Buffer.from(JSON.stringify(batch)));
  const { line, key } = describeCloudMessage('dcmms/demo-site/alarms', payload);
  expect(key).toBeUndefined();
  expect(line).toBe(`alarms batch #7: 2 items (2 alarm); first alarm INV-01 string_underperformance raised (medium, analytics): string 2 at 10 % of its peers [${payload.length} B gzip]`);
});

test('an events batch names what its items are', () => {
  const items = [
    { schemaVersion: 1, siteId: 's', assetId: 'INV-01', ts: 1, state: 'online', lastSeen: 1, consecutiveFailures: 0 },
    { schemaVersion: 1, siteId: 's', assetId: 'INV-01', kind: 'performance_ratio', ts: 1, value: 81.2, u: '%' },
    { schemaVersion: 1, siteId: 's', assetId: 'INV-01', ts: 1, decisionId: 'd', ruleId: 'r', action: 'curtail', params: {}, inputs: [], outcome: 'executed' },
  ];
  const { line } = describeCloudMessage('dcmms/s/events', gzipSync(Buffer.from(JSON.stringify({ schemaVersion: 1, siteId: 's', kind: 'events', seq: 1, createdAt: 1, items }))));
  expect(line).toMatch(/^events batch #1: 3 items \(1 device status, 1 analytics, 1 control decision\) \[\d+ B gzip\]$/);
});

test('health: "degraded" says why, from the component\'s last error or its newest warning', () => {
  const log = path.join(dir, 'com.dcmms.edge.Aggregator.log');
  fs.writeFileSync(log, [
    `2026-12-03T17:15:51.000Z [stdout] {"level":"info","time":"2026-12-03T17:15:51.000Z","msg":"starting"}`,
    `2026-12-03T17:15:51.950Z [stdout] {"level":"warn","time":"2026-12-03T17:15:51.950Z","file":"/x/raw.db","msg":"Processor store not there yet; waiting"}`,
    '',
  ].join('\n'));
  const metrics = (lastError: { code: string; message: string; at: number } | null) => ({ messagesIn: 0, messagesOut: 0, errors: 0, lastError, latencyMs: { p50: 0, p95: 0, p99: 0, max: 0, count: 0 }, queueDepth: 0, queues: {}, connectionState: 'connected', rejections: {}, dropped: {} });
  const h = {
    schemaVersion: 1, siteId: 'demo-site', ts: 1, status: 'degraded', system: null,
    issues: [
      { severity: 'medium', code: 'COMPONENT_DEGRADED', component: 'aggregator', message: 'aggregator reports degraded' },
      { severity: 'medium', code: 'COMPONENT_DEGRADED', component: 'uplink', message: 'uplink reports degraded' },
      { severity: 'high', code: 'DISK_HIGH', message: 'disk 93 % full' },
    ],
    components: [
      { component: 'aggregator', componentName: 'com.dcmms.edge.Aggregator', version: '0.1.0', state: 'degraded', stale: false, lastReportAt: 1, uptimeMs: 1, metrics: metrics(null) },
      { component: 'uplink', componentName: 'com.dcmms.edge.Uplink', version: '0.1.0', state: 'degraded', stale: false, lastReportAt: 1, uptimeMs: 1, metrics: metrics({ code: 'E', message: 'IoT Core unreachable', at: 1 }) },
    ],
  } as unknown as SiteHealthSummary;
  const { line, key } = describeCloudMessage('dcmms/demo-site/health', Buffer.from(JSON.stringify(h)), (name) => path.join(dir, `${name}.log`));
  expect(line).toBe('health: degraded because aggregator degraded: Processor store not there yet; waiting (/x/raw.db) [logged 17:15:51]; uplink degraded: IoT Core unreachable; disk 93 % full');
  expect(key).toBeDefined();
});

test('a health line stays readable: each reason at most 160 characters, the line at most 400', () => {
  const metrics = { messagesIn: 0, messagesOut: 0, errors: 1, lastError: { code: 'E', message: `S3 refused: ${'x'.repeat(500)}`, at: 1 }, latencyMs: { p50: 0, p95: 0, p99: 0, max: 0, count: 0 }, queueDepth: 0, queues: {}, connectionState: 'connected', rejections: {}, dropped: {} };
  const names = ['uplink', 'aggregator', 'processor', 'analytics'];
  const h = {
    schemaVersion: 1, siteId: 'demo-site', ts: 1, status: 'degraded', system: null,
    issues: names.map((c) => ({ severity: 'medium', code: 'COMPONENT_DEGRADED', component: c, message: `${c} reports degraded` })),
    components: names.map((c) => ({ component: c, componentName: `com.dcmms.edge.${c}`, version: '0.1.0', state: 'degraded', stale: false, lastReportAt: 1, uptimeMs: 1, metrics })),
  } as unknown as SiteHealthSummary;
  const { line } = describeCloudMessage('dcmms/demo-site/health', Buffer.from(JSON.stringify(h)));
  expect(line.length).toBeLessThanOrEqual(400);
  expect(line).toMatch(/^health: degraded because uplink degraded: S3 refused: x+…; aggregator degraded/);
  expect(line.split('; ')[0]!.length).toBeLessThanOrEqual('health: degraded because uplink degraded: '.length + 160);
});

test('binary that is not JSON is described, not printed', () => {
  expect(describeCloudMessage('t', Buffer.from([0x1f, 0x8b, 1, 2, 3, 0xff])).line).toBe('6 bytes (gzip) of binary data');
  expect(describeCloudMessage('t', Buffer.from([0, 0xff, 0xfe])).line).toBe('3 bytes of binary data');
});

test('LocalHmi: address and first-start credential from its log line; nothing when there is no log', () => {
  const log = path.join(dir, 'com.dcmms.edge.LocalHmi.log');
  expect(readHmiInfo(log)).toBeUndefined();
  fs.writeFileSync(log, [
    '2026-12-03T17:15:50.617Z [lifecycle] state NEW -> INSTALLED',
    `2026-12-03T17:15:52.513Z [stdout] {"level":"warn","time":"2026-12-03T17:15:52.512Z","component":"local-hmi","username":"admin","password":"fake-Pw-123","url":"https://gw:8443/","msg":"${HMI_FIRST_START_MSG}"}`,
    '',
  ].join('\n'));
  expect(readHmiInfo(log)).toEqual({ url: 'https://gw:8443/', credential: { username: 'admin', password: 'fake-Pw-123', at: '2026-12-03T17:15:52.512Z' } });
  // A later start logs only where it listens: the address is still shown, the credential kept from the first start.
  fs.appendFileSync(log, '2026-12-04T08:00:00.000Z [stdout] {"level":"info","time":"2026-12-04T08:00:00.000Z","url":"https://gw:9443/","msg":"listening"}\n');
  expect(readHmiInfo(log)).toEqual({ url: 'https://gw:9443/', credential: { username: 'admin', password: 'fake-Pw-123', at: '2026-12-03T17:15:52.512Z' } });
});

test('health and the Uplink status repeat every few seconds: their key changes with what matters only', () => {
  const health = (cpu: number, status = 'degraded') => Buffer.from(JSON.stringify({ schemaVersion: 1, siteId: 's', ts: 1, status, components: [], system: null, issues: [{ severity: 'medium', code: 'CPU_HIGH', message: `CPU usage ${cpu} % > 90 %` }] }));
  const k = (b: Buffer) => describeCloudMessage('dcmms/s/health', b).key;
  expect(k(health(97))).toBe(k(health(98)));
  expect(k(health(97))).not.toBe(k(health(97, 'critical')));
  const uplink = (state: string, backlog: number) => Buffer.from(JSON.stringify({ schemaVersion: 1, siteId: 's', ts: 1, exporters: { iotcore: { state, lastSuccessAt: null, consecutiveFailures: 0, nextAttemptAt: null, lastError: null, backlogBatches: backlog } }, outboxBytes: 100, maxOutboxBytes: 1e6, backlog: {}, dropped: {}, compressionRatio: null }));
  const u = (b: Buffer) => describeCloudMessage('dcmms/s/uplink/status', b);
  expect(u(uplink('online', 0)).key).toBe(u(uplink('online', 1)).key);
  expect(u(uplink('online', 0)).key).not.toBe(u(uplink('offline', 0)).key);
  expect(u(uplink('offline', 40)).line).toBe('uplink: iotcore offline, 40 batches waiting; outbox 0.1 KiB');
});
