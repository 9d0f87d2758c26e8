/** The simulator's control channel (HTTP on a Unix socket), as `dcmms-edge simulator fault|clear|state` use it. */
import path from 'node:path';
import fs from 'node:fs';
import { createSiteSimulator } from '../../scripts/simulator';
import { controlRequest, startControlServer } from '../../scripts/simulator/control';
import { tmpDir } from '../helpers/wait';

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
