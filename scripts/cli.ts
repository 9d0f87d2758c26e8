/**
 * `dcmms-edge`: the project's one command line.
 *
 *   dcmms-edge nucleus --root DIR                 run the local Greengrass runtime in the foreground
 *   dcmms-edge deployment create|status|list ...  local deployments, as `greengrass-cli deployment`
 *   dcmms-edge component list|details|restart|stop ...  as `greengrass-cli component`
 *   dcmms-edge cloud online|offline --root DIR    make IoT Core reachable or not
 *   dcmms-edge simulator ...                      the site simulator (Modbus TCP solar plant) and its faults
 *   dcmms-edge query --db FILE ...                read the time-series store
 *   dcmms-edge control manual|automatic|ack|log   an operator's hand on LocalControl, its audit log
 *   dcmms-edge analytics --db FILE|--root DIR     Analytics's latest results and active alarms
 *   dcmms-edge demo                               what `npm start` runs: the bundle on the demo site
 */
import { CliUsageError } from './cli/args';

// Each command is loaded when it runs, so that e.g. the nucleus does not carry the Modbus, SQLite
// and simulator libraries in its memory (docs/benchmarks.md: idle RSS).
const USAGE = `usage: dcmms-edge <command> [options]

commands:
  nucleus --root DIR [--thing-name NAME] [--mqtt-url URL] [--offline] [--offline-behaviour spool|fail]
          [--log-level debug|info|warn|error]
      Run the local Greengrass runtime in the foreground (IPC socket at DIR/ipc.socket).
  deployment create --root DIR [--recipeDir D] [--artifactDir A] [--merge Name=Version ...]
          [--remove Name ...] [--update-config JSON|FILE] [--failure-handling-policy ROLLBACK|DO_NOTHING] [--wait]
  deployment status --root DIR -i ID
  deployment list --root DIR
  component list --root DIR
  component details --root DIR -n NAME
  component restart --root DIR -n NAME[,NAME]
  component stop --root DIR -n NAME[,NAME]
  cloud online|offline --root DIR
      Make the simulated IoT Core reachable or unreachable for a running nucleus.
  simulator --port P [--time-scale N] [--seed S] [--inverters N] [--strings N] [--start ISO] ...
      Run the site simulator (a Modbus TCP solar plant) in the foreground; prints the adapter's device config.
  simulator fault|clear|operate|state|devices|config|faults --port P ...
      Inject or clear faults, operate switches by hand, read the true plant state (see docs/simulator.md).
  query --db FILE --asset A --point P --from ISO --to ISO [--downsample 1m:avg] [--json|--csv]
  query --db FILE --list
      Read the gateway's time-series store (read-only; safe while the Processor writes).
  control manual|automatic --root DIR --asset A [--site S] [--reason TEXT] [--operator NAME]
  control ack --root DIR --alarm ID [--site S] [--operator NAME]
      Take an asset out of automation or give it back; acknowledge an alarm (silences the horn).
  control log --db FILE [--asset A] [--since ISO] [--limit N] [--json]
      LocalControl's audit log (read-only; safe while it writes).
  analytics --db FILE | --root DIR [--asset A] [--kind K] [--json]
      Analytics's latest result per asset and kind, and its active alarms (read-only; safe while it writes).
  modbus scan --host H [--port P] [--unit U] | --serial PATH [--baud B] [--parity none|even|odd] [--stop-bits 1|2]
      Discover a SunSpec device and print every model and decoded point as JSON.
  demo [--root DIR] [--build DIR]
      Run the runtime with the built bundle deployed on the demo site (what 'npm start' does).
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
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
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`dcmms-edge: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliUsageError) {
      process.stderr.write(`dcmms-edge: ${err.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`dcmms-edge: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
