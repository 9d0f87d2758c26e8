/**
 * `dcmms-edge modbus scan` (scripts/cli/modbus.ts) against pymodbus (a Modbus server written by
 * others) serving a SunSpec image built from the model definitions: the built CLI over TCP, and
 * runModbus in-process over RTU on a socat pty pair, at base 50000, and against a device without
 * the 'SunS' marker.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CliUsageError } from '../../scripts/cli/args';
import { runModbus } from '../../scripts/cli/modbus';
import { inverterImage } from '../../components/modbus-adapter/testing/images';
import { startPymodbusRtu, startPymodbusTcp } from '../helpers/pymodbus';

jest.setTimeout(45_000);

const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');
const stops: Array<() => Promise<void>> = [];

afterAll(async () => {
  await Promise.all(stops.map((s) => s()));
});

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code as number) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** runModbus in-process with stdout and stderr captured. */
async function scanInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((stdout += c.toString()), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((stderr += c.toString()), true));
  try {
    const code = await runModbus(args);
    return { code, stdout, stderr };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

type Doc = { base: number; device: Record<string, unknown>; models: Record<string, Record<string, unknown>>; unknownModels: unknown[]; problems: string[] };

function expectInverter(doc: Doc): void {
  expect(Object.keys(doc.models)).toEqual(['1', '103', '120', '123', '160']);
  expect(doc.models['1']).toMatchObject({ Mn: 'dCMMS', Md: 'SimInverter', SN: 'INV-0001', Vr: '1.0', DA: 1 });
  const m103 = doc.models['103']!;
  // After the scale factor, with the unit.
  expect(m103['W']).toEqual({ value: 9560, unit: 'W' });
  expect(m103['A']).toEqual({ value: 41.5, unit: 'A' });
  expect(m103['Hz']).toEqual({ value: 50.01, unit: 'Hz' });
  expect(m103['TmpCab']).toEqual({ value: 41.2, unit: 'C' });
  // Enums by name, bitfields as the names of the set bits.
  expect(m103['St']).toBe('MPPT');
  expect(m103['Evt1']).toEqual(['GROUND_FAULT', 'OVER_TEMP']);
  // Not implemented: absent. Scale factors: applied, not printed.
  expect('PhVphB' in m103).toBe(false);
  expect('W_SF' in m103).toBe(false);
  expect(doc.models['123']).toMatchObject({ Conn: 'CONNECT', WMaxLimPct: { value: 100, unit: '% WMax' }, WMaxLim_Ena: 'DISABLED' });
  // Model 160's repeating modules as an array.
  const modules = doc.models['160']!['module'] as Array<Record<string, unknown>>;
  expect(modules).toHaveLength(3);
  expect(modules.map((m) => m['IDStr'])).toEqual(['MPPT1', 'MPPT2', 'MPPT3']);
  expect(modules[1]).toMatchObject({ ID: 2, DCA: { value: 8.1, unit: 'A' }, DCV: { value: 605.9, unit: 'V' }, DCW: { value: 4908, unit: 'W' } });
  expect(doc.models['160']!['N']).toBe(3);
  expect(doc.problems).toEqual([]);
  expect(doc.unknownModels).toEqual([]);
}

describe('modbus scan', () => {
  it('the built CLI prints every model and point of a SunSpec device over TCP as one JSON document', async () => {
    expect(fs.existsSync(CLI)).toBe(true); // npm run build first (npm test does)
    const peer = await startPymodbusTcp({ hr: { 40000: inverterImage() } });
    stops.push(peer.stop);
    const r = await runCli(['modbus', 'scan', '--host', '127.0.0.1', '--port', String(peer.port), '--unit', '3']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc.device).toEqual({ host: '127.0.0.1', port: peer.port, unit: 3 });
    expect(doc.base).toBe(40000);
    expectInverter(doc);
  });

  it('finds the map at 50000 when 40000 and 0 have none', async () => {
    const peer = await startPymodbusTcp({ hr: { 50000: inverterImage({ wSf: 1 }) } });
    stops.push(peer.stop);
    const r = await scanInProcess(['scan', '--host', '127.0.0.1', '--port', String(peer.port)]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc.base).toBe(50000);
    expect(doc.models['103']!['W']).toEqual({ value: 9560, unit: 'W' });
  });

  it('scans over RTU (socat pty pair, pymodbus RTU framer) with the serial options', async () => {
    const peer = await startPymodbusRtu({ hr: { 40000: inverterImage() } });
    stops.push(peer.stop);
    const r = await scanInProcess(['scan', '--serial', peer.clientPath, '--baud', '9600', '--parity', 'none', '--stop-bits', '1', '--unit', '1']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc.device).toEqual({ serial: peer.clientPath, baud: 9600, parity: 'none', stopBits: 1, unit: 1 });
    expectInverter(doc);
  });

  it('exits 1 with a clear message when no SunSpec marker is at 40000, 0 or 50000', async () => {
    const peer = await startPymodbusTcp({ hr: { 100: [1, 2, 3, 4] } });
    stops.push(peer.stop);
    const r = await runCli(['modbus', 'scan', '--host', '127.0.0.1', '--port', String(peer.port)]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/is not a SunSpec device: no SunSpec marker 'SunS' \(tried 40000: exception 2; 0: exception 2; 50000: exception 2\)/);
  });

  it('exits 1 when the device cannot be reached, and rejects bad arguments as usage errors', async () => {
    const r = await scanInProcess(['scan', '--host', '127.0.0.1', '--port', '1', '--timeout', '500']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/127\.0\.0\.1:1 unit 1: .*cannot connect/);
    await expect(scanInProcess(['scan'])).rejects.toThrow(CliUsageError);
    await expect(scanInProcess(['scan', '--host', 'h', '--serial', '/dev/x'])).rejects.toThrow(/one of --host/);
    await expect(scanInProcess(['scan', '--serial', '/dev/x', '--parity', 'mark'])).rejects.toThrow(/--parity/);
    await expect(scanInProcess(['scan', '--serial', '/dev/x', '--unit', '0'])).rejects.toThrow(/--unit must be an integer 1\.\.247/);
    await expect(scanInProcess(['probe'])).rejects.toThrow(/unknown modbus command/);
  });
});
