/**
 * The simulator's local control channel: HTTP/1.1 with JSON bodies on a Unix socket (only local
 * users with access to the socket file can use it). Default path: <tmpdir>/dcmms-sim-<modbus port>.sock,
 * so `dcmms-edge simulator fault --port P` finds the simulator serving Modbus on port P.
 *
 *   GET /devices   GET /config   GET /state   GET /faults
 *   POST /faults {"kind": "string-fault", "unit": 1, "string": 2}  -> {"id": "F1"}
 *   DELETE /faults/F1   DELETE /faults                            -> {"cleared": n}
 *   POST /operate {"kind": "string-switch", "unit": 111, "string": 2, "closed": false} -> {"ok": true}
 *   POST /operate {"kind": "breaker", "closed": true}                                -> {"ok": true}
 *   POST /operate {"kind": "clean"}  or  {"kind": "clean", "unit": 2}                 -> {"ok": true}
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { SimulatorError } from './faults';
import type { FaultSpec, Operation, SiteSimulator } from './site';

export function controlSocketPath(modbusPort: number): string {
  return path.join(os.tmpdir(), `dcmms-sim-${modbusPort}.sock`);
}

const MAX_BODY = 64 * 1024;

export async function startControlServer(sim: SiteSimulator, socketPath = controlSocketPath(sim.port)): Promise<{ path: string; close(): Promise<void> }> {
  const reply = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body) + '\n');
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
      if (body.length > MAX_BODY) req.destroy();
    });
    req.on('end', () => {
      try {
        const url = req.url ?? '/';
        if (req.method === 'GET' && url === '/devices') return reply(res, 200, sim.devices());
        if (req.method === 'GET' && url === '/config') return reply(res, 200, sim.deviceConfig());
        if (req.method === 'GET' && url === '/state') return reply(res, 200, sim.state());
        if (req.method === 'GET' && url === '/faults') return reply(res, 200, sim.faults());
        if (req.method === 'POST' && url === '/faults') return reply(res, 201, { id: sim.injectFault(JSON.parse(body) as FaultSpec) });
        if (req.method === 'POST' && url === '/operate') {
          sim.operate(JSON.parse(body) as Operation);
          return reply(res, 200, { ok: true });
        }
        if (req.method === 'DELETE' && url.startsWith('/faults')) {
          const id = url.slice('/faults/'.length) || undefined;
          return reply(res, 200, { cleared: sim.clearFault(id) });
        }
        return reply(res, 404, { error: `no route ${req.method} ${url}` });
      } catch (e) {
        const bad = e instanceof SimulatorError || e instanceof SyntaxError;
        return reply(res, bad ? 400 : 500, { error: e instanceof Error ? e.message : String(e) });
      }
    });
  });
  fs.rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  let closing: Promise<void> | undefined;
  return {
    path: socketPath,
    close: () => {
      closing ??= new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => {
          fs.rmSync(socketPath, { force: true });
          done();
        });
      });
      return closing;
    },
  };
}

/** One request to a running simulator's control socket. */
export function controlRequest(socketPath: string, method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ socketPath, method, path: urlPath, headers: data ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}
