/**
 * `dcmms-edge`: the project's one command line. `dcmms-edge --help` lists the commands,
 * `dcmms-edge <command> --help` a command's options; both are generated from scripts/cli/commands.ts,
 * the same definitions the commands parse their arguments with.
 */
import { CliHelp, CliUsageError, quietOnClosedStdout } from './cli/args';
import { commandFor, commandGroup, groupHelp, topUsage } from './cli/commands';

// Each command is loaded when it runs, so that e.g. the nucleus does not carry the Modbus, SQLite
// and simulator libraries in its memory (docs/benchmarks.md: idle RSS).
async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // `component`, `component --help`: the subcommands of a command that has them.
  const group = command ? commandGroup(command) : [];
  if (group.length > 1 && (rest.length === 0 || rest[0] === '--help' || rest[0] === '-h' || rest[0] === 'help') && !(command === 'simulator' && rest.length === 0)) {
    process.stdout.write(groupHelp(command!));
    return rest.length === 0 ? 2 : 0;
  }
  switch (command) {
    case 'nucleus':
      return (await import('./cli/nucleus')).runNucleus(rest);
    case 'deployment':
      return (await import('./cli/deployment')).runDeployment(rest);
    case 'component':
      return (await import('./cli/component')).runComponent(rest);
    case 'cloud':
      return (await import('./cli/cloud')).runCloud(rest);
    case 'demo':
      return (await import('./cli/demo')).runDemo(rest);
    case 'modbus':
      return (await import('./cli/modbus')).runModbus(rest);
    case 'simulator':
      return (await import('./cli/simulator')).runSimulator(rest);
    case 'query':
      return (await import('./cli/query')).runQuery(rest);
    case 'control':
      return (await import('./cli/control')).runControl(rest);
    case 'analytics':
      return (await import('./cli/analytics')).runAnalytics(rest);
    case 'status':
      return (await import('./cli/status')).runStatus(rest);
    case 'alarms':
      return (await import('./cli/status')).runAlarms(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(topUsage());
      return command === undefined ? 2 : 0;
    default:
      throw new CliUsageError(`unknown command '${command}'`);
  }
}

/** The command whose --help a usage error points to: `component list`, `query`, or none. */
function helpHint(argv: string[]): string {
  const spec = commandFor(argv);
  if (spec) return `dcmms-edge ${spec.path} --help`;
  if (argv[0] && commandGroup(argv[0]).length > 0) return `dcmms-edge ${argv[0]} --help`;
  return 'dcmms-edge --help';
}

quietOnClosedStdout();
const argv = process.argv.slice(2);
main(argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliHelp) {
      process.stdout.write(err.text);
      process.exitCode = 0;
    } else if (err instanceof CliUsageError) {
      // One line and where to read more: a wall of help hides the message.
      process.stderr.write(`dcmms-edge: ${err.message}\nsee '${helpHint(argv)}'\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`dcmms-edge: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
