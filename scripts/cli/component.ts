/** `dcmms-edge component list|details|restart|stop`, as `greengrass-cli component`. */
import { CliUsageError, parse, requireRoot } from './args';
import { describeError, withNucleus } from './session';

export async function runComponent(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parse(rest, { root: { type: 'string' }, names: { type: 'string', short: 'n' }, name: { type: 'string' } });
  const root = requireRoot(values);
  const names = (((values.names ?? values.name) as string | undefined) ?? '').split(',').filter(Boolean);
  const needNames = (): void => {
    if (names.length === 0) throw new CliUsageError(`component ${sub} needs -n NAME`);
  };
  return withNucleus(root, async (client) => {
    try {
      switch (sub) {
        case 'list': {
          const { components } = await client.listComponents({});
          for (const c of components ?? []) {
            process.stdout.write(`Component Name: ${c.componentName}\n    Version: ${c.version}\n    State: ${c.state}\n    Configuration: ${JSON.stringify(c.configuration ?? {})}\n`);
          }
          return 0;
        }
        case 'details': {
          needNames();
          const { componentDetails } = await client.getComponentDetails({ componentName: names[0]! });
          process.stdout.write(JSON.stringify(componentDetails, null, 2) + '\n');
          return 0;
        }
        case 'restart':
        case 'stop': {
          needNames();
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
        default:
          throw new CliUsageError(`component takes list, details, restart or stop, not '${sub ?? ''}'`);
      }
    } catch (e) {
      if (e instanceof CliUsageError) throw e;
      throw new Error(describeError(e));
    }
  });
}
