/** `dcmms-edge component list|details|restart|stop`, as `greengrass-cli component`. */
import fs from 'node:fs';
import path from 'node:path';
import { CliUsageError, parseCommand, requireRoot } from './args';
import { COMPONENT_DETAILS, COMPONENT_LIST, COMPONENT_RESTART, COMPONENT_STOP } from './commands';
import { describeError, withNucleus } from './session';
import { formatDuration, table } from './format';

const SPECS = { list: COMPONENT_LIST, details: COMPONENT_DETAILS, restart: COMPONENT_RESTART, stop: COMPONENT_STOP } as const;
/** How much of the nucleus log's end is read for state changes: enough for days of a quiet site. */
const LOG_TAIL_BYTES = 4 * 1024 * 1024;

/**
 * When each component entered its current state, from the nucleus log's `component state` lines
 * (the IPC ListComponents answer has no time). Only the log's last LOG_TAIL_BYTES are read.
 */
export function stateSince(root: string): Map<string, { state: string; at: number }> {
  const out = new Map<string, { state: string; at: number }>();
  const file = path.join(root, 'logs', 'greengrass.log');
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const start = Math.max(0, size - LOG_TAIL_BYTES);
      const buf = Buffer.alloc(size - start);
      fs.readSync(fd, buf, 0, buf.length, start);
      text = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    if (!line.includes('"component state"')) continue;
    try {
      // The line carries "component" twice (the logger's, then the component's): JSON.parse keeps the last.
      const r = JSON.parse(line) as { msg?: string; component?: string; state?: string; time?: string };
      if (r.msg === 'component state' && r.component && r.state && r.time) out.set(r.component, { state: r.state, at: Date.parse(r.time) });
    } catch {
      // A torn first line of the tail: skip it.
    }
  }
  return out;
}

export async function runComponent(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const spec = SPECS[sub as keyof typeof SPECS];
  if (!spec) throw new CliUsageError(`component takes list, details, restart or stop, not '${sub ?? ''}'`);
  const { values } = parseCommand(spec, rest);
  const root = requireRoot(values);
  const names = ((values.names as string | undefined) ?? '').split(',').filter(Boolean);
  const needNames = (): void => {
    if (names.length === 0) throw new CliUsageError(`component ${sub} needs -n NAME`);
  };
  if (sub !== 'list') needNames();
  return withNucleus(root, async (client) => {
    try {
      switch (sub) {
        case 'list': {
          const { components } = await client.listComponents({});
          if (values.json) {
            process.stdout.write(`${JSON.stringify(components ?? [], null, 2)}\n`);
            return 0;
          }
          const since = stateSince(root);
          const now = Date.now();
          const rows = (components ?? []).map((c) => {
            const s = since.get(c.componentName ?? '');
            // Uptime is meaningful while it runs; for a FINISHED or BROKEN one it is "in this state for".
            return [c.componentName ?? '', c.version ?? '', String(c.state), s && s.state === c.state ? formatDuration(now - s.at) : '-'];
          });
          process.stdout.write(table(['NAME', 'VERSION', 'STATE', 'UPTIME'], rows));
          return 0;
        }
        case 'details': {
          const { componentDetails } = await client.getComponentDetails({ componentName: names[0]! });
          process.stdout.write(JSON.stringify(componentDetails, null, 2) + '\n');
          return 0;
        }
        default: {
          let code = 0;
          for (const componentName of names) {
            const r =
              sub === 'restart'
                ? (await client.restartComponent({ componentName })).restartStatus
                : (await client.stopComponent({ componentName })).stopStatus;
            process.stdout.write(`${componentName}: ${sub} ${r}\n`);
            if (r !== 'SUCCEEDED') code = 1;
          }
          return code;
        }
      }
    } catch (e) {
      if (e instanceof CliUsageError) throw e;
      throw new Error(describeError(e));
    }
  });
}
