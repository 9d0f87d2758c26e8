/** The simulator's control channel (HTTP on a Unix socket), as `dcmms-edge simulator fault|clear|state` use it. */
import path from 'node:path';
import fs from 'node:fs';
import { createSiteSimulator } from '../../scripts/simulator';
import { controlRequest, startControlServer } from '../../scripts/simulator/control';
import { tmpDir } from '../helpers/wait';
import { runSimulator } from '../../scripts/cli/simulator';

/** `dcmms-edge simulator ...` in this process: exit code and the JSON it printed. */
async function cli(args: string[]): Promise<{ code: number; out: unknown }> {
  let text = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((text += String(chunk)), true));
  try {
    const code = await runSimulator(args);
    return { code, out: JSON.parse(text) as unknown };
  } finally {
    spy.mockRestore();
  }
}

describe('simulator control socket', () => {
  it('injects, lists and clears faults and reports state', async () => {
    const dir = tmpDir('/tmp/simctl-');
    const sim = await createSiteSimulator({ startTime: new Date(Date.UTC(2025, 5, 21, 12)), cloudiness: 0 });
    const ctl = await startControlServer(sim, path.join(dir, 'ctl.sock'));
    try {
      const inj = await controlRequest(ctl.path, 'POST', '/faults', { kind: 'ground-fault', unit: 2 });
      expect(inj).toEqual({ status: 201, body: { id: 'F1' } });
      const state = (await controlRequest(ctl.path, 'GET', '/state')).body as { inverters: { st: string; events: string[] }[] };
      expect(state.inverters[1]).toMatchObject({ st: 'FAULT', events: ['GROUND_FAULT'] });
      expect(state.inverters[0].st).toBe('MPPT');
      const bad = await controlRequest(ctl.path, 'POST', '/faults', { kind: 'meteor' });
      expect(bad.status).toBe(400);
      expect((await controlRequest(ctl.path, 'DELETE', '/faults/F1')).body).toEqual({ cleared: 1 });
      expect((await controlRequest(ctl.path, 'GET', '/faults')).body).toEqual([]);
      const cfg = (await controlRequest(ctl.path, 'GET', '/config')).body as { devices: { connection: { port: number } }[] };
      expect(cfg.devices[0].connection.port).toBe(sim.port);
    } finally {
      await ctl.close();
      await sim.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(fs.existsSync(path.join(dir, 'ctl.sock'))).toBe(false);
  });

  it('operates a combiner box string switch by hand, and refuses an operation that names no switch', async () => {
    const dir = tmpDir('/tmp/simctl-');
    const sim = await createSiteSimulator({ startTime: new Date(Date.UTC(2025, 5, 21, 12)), cloudiness: 0 });
    const ctl = await startControlServer(sim, path.join(dir, 'ctl.sock'));
    const combiner = async (): Promise<{ strings: { closed: boolean; a: number }[] }> => ((await controlRequest(ctl.path, 'GET', '/state')).body as { combiners: { strings: { closed: boolean; a: number }[] }[] }).combiners[0];
    try {
      expect((await combiner()).strings[1]).toMatchObject({ closed: true });
      expect(await controlRequest(ctl.path, 'POST', '/operate', { kind: 'string-switch', unit: 111, string: 2, closed: false })).toEqual({ status: 200, body: { ok: true } });
      expect((await combiner()).strings[1]).toEqual(expect.objectContaining({ closed: false, a: 0 }));
      // A fault clear leaves a switch as it was operated: it is not a fault.
      expect((await controlRequest(ctl.path, 'DELETE', '/faults')).status).toBe(200);
      expect((await combiner()).strings[1].closed).toBe(false);
      const bad = await controlRequest(ctl.path, 'POST', '/operate', { kind: 'string-switch', unit: 1, string: 2, closed: true });
      expect(bad).toEqual({ status: 400, body: { error: expect.stringMatching(/combiner box's unit id \(111, 112, 113\)/) } });
      expect((await controlRequest(ctl.path, 'POST', '/operate', { kind: 'string-switch', unit: 111, string: 9, closed: true })).status).toBe(400);
      expect((await controlRequest(ctl.path, 'POST', '/operate', { kind: 'string-switch', unit: 111, string: 2, closed: true })).status).toBe(200);
      expect((await combiner()).strings[1].closed).toBe(true);
    } finally {
      await ctl.close();
      await sim.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('`dcmms-edge simulator fault|operate|state`: a ground fault on a string, the string isolated and the breaker operated by hand', async () => {
    const dir = tmpDir('/tmp/simctl-');
    const sim = await createSiteSimulator({ startTime: new Date(Date.UTC(2025, 5, 21, 12)), cloudiness: 0 });
    const ctl = await startControlServer(sim, path.join(dir, 'ctl.sock'));
    const c = ['--control', ctl.path];
    type State = { inverters: { st: string }[]; combiners: { strings: { closed: boolean; status: string[] }[] }[]; io: { breakerClosed: boolean } };
    const state = async (): Promise<State> => (await cli(['state', ...c])).out as State;
    try {
      expect(await cli(['fault', ...c, '--kind', 'ground-fault', '--unit', '1', '--string', '3'])).toEqual({ code: 0, out: { id: 'F1' } });
      expect((await state()).inverters[0].st).toBe('FAULT');
      expect((await state()).combiners[0].strings[2].status).toEqual(['insulationFault']);
      expect(await cli(['operate', ...c, '--kind', 'string-switch', '--unit', '111', '--string', '3', '--closed', 'false'])).toEqual({ code: 0, out: { ok: true } });
      expect((await state()).inverters[0].st).toBe('MPPT');
      expect(await cli(['operate', ...c, '--kind', 'breaker', '--closed', 'false'])).toEqual({ code: 0, out: { ok: true } });
      expect((await state()).io.breakerClosed).toBe(false);
      expect((await cli(['operate', ...c, '--kind', 'string-switch', '--unit', '7', '--string', '3', '--closed', 'true'])).code).toBe(1);
      await expect(runSimulator(['operate', ...c, '--kind', 'breaker'])).rejects.toThrow(/--closed true\|false/);
    } finally {
      await ctl.close();
      await sim.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a digital-input fault cleared through the socket (`simulator fault` then `clear`) releases the input', async () => {
    const dir = tmpDir('/tmp/simctl-');
    const sim = await createSiteSimulator({ startTime: new Date(Date.UTC(2025, 5, 21, 12)), cloudiness: 0 });
    const ctl = await startControlServer(sim, path.join(dir, 'ctl.sock'));
    const inputs = async (): Promise<Record<string, boolean>> => ((await controlRequest(ctl.path, 'GET', '/state')).body as { io: { inputs: Record<string, boolean> } }).io.inputs;
    try {
      expect(await inputs()).toMatchObject({ fireAlarm: false, doorClosed: true });
      expect((await controlRequest(ctl.path, 'POST', '/faults', { kind: 'digital-input', input: 'fireAlarm', value: true })).status).toBe(201);
      expect((await controlRequest(ctl.path, 'POST', '/faults', { kind: 'digital-input', input: 'doorClosed', value: false })).status).toBe(201);
      expect(await inputs()).toMatchObject({ fireAlarm: true, doorClosed: false });
      expect((await controlRequest(ctl.path, 'DELETE', '/faults/F1')).body).toEqual({ cleared: 1 });
      expect(await inputs()).toMatchObject({ fireAlarm: false, doorClosed: false }); // F2 still forces the door
      expect((await controlRequest(ctl.path, 'DELETE', '/faults')).body).toEqual({ cleared: 1 });
      expect(await inputs()).toMatchObject({ fireAlarm: false, doorClosed: true });
    } finally {
      await ctl.close();
      await sim.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
