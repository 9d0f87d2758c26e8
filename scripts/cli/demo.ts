/**
 * `dcmms-edge demo` (what `npm start` runs after the build): the site simulator (a small solar
 * plant on Modbus TCP) and the local nucleus with the built bundle deployed on the demo site, the
 * ModbusAdapter configured from the simulator's device list, the way a fleet engineer would try it
 * with the Greengrass CLI. It prints component states as they change, a line per device status
 * change, and every message that reaches "the cloud" (the embedded IoT Core broker), until Ctrl-C.
 */
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { IMPLEMENTED_COMPONENTS, IOT_ALL_TOPICS_FILTER, filters, validateAlarm, validateDeviceStatus, validateTelemetry } from '../../components/lib/contract';
import { createLogger } from '../../components/lib/logger';
import { createNucleus } from '../runtime/nucleus';
import { simulatorAnalyticsConfig } from '../../components/analytics/testing/sim-config';
import { simulatorMlInferenceConfig } from '../../components/ml-inference/testing/sim-config';
import { createSiteSimulator } from '../simulator';
import { startControlServer } from '../simulator/control';
import { CliUsageError, parseCommand } from './args';
import { DEMO } from './commands';
import { alarmText, describeCloudMessage, readHmiInfo } from './demo-view';
import { serveCloudSwitch } from './nucleus';
import { storePaths } from './status';

const SITE_COMPONENT = 'com.dcmms.edge.Site';
const LOCAL_HMI = 'com.dcmms.edge.LocalHmi';
/**
 * Analytics raises string_underperformance after a string has been low this long. The component's
 * default is 15 minutes (a cloud's shadow must not raise it); the demo shortens it to 1 minute so
 * that the fault the demo suggests shows as an alarm while one watches (README, docs/simulator.md).
 */
const DEMO_STRING_FOR_MS = 60_000;

function out(line: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${line}\n`);
}

/**
 * LocalHmi logs where it listens, and at its first start the admin credential, once. The demo
 * prints both when they appear (watched for a minute after LocalHmi is RUNNING). A later run finds
 * the first start's line still in the log and prints it again: the password stays valid until
 * someone changes it in the HMI. Nothing is printed when LocalHmi is not deployed.
 */
function watchHmi(logFile: string): NodeJS.Timeout {
  const until = Date.now() + 60_000;
  const timer = setInterval(() => {
    const hmi = readHmiInfo(logFile);
    const listening = hmi !== undefined;
    if (listening || Date.now() > until) clearInterval(timer);
    if (!hmi) {
      if (!listening && Date.now() > until) out(`local HMI is running but has not logged its address yet (${logFile})`);
      return;
    }
    const c = hmi.credential;
    out(`local HMI at ${hmi.url}${c ? `  user ${c.username}  password ${c.password}  (created at its first start${c.at ? ` ${c.at}` : ''}: change it after logging in)` : `  (its first-start credential is not in ${logFile})`}`);
  }, 500);
  timer.unref();
  return timer;
}

export async function runDemo(args: string[]): Promise<number> {
  const { values } = parseCommand(DEMO, args);
  const timeScale = Number(values['time-scale'] ?? 1);
  if (!Number.isFinite(timeScale) || timeScale <= 0) throw new CliUsageError('--time-scale must be a positive number');
  const hmiPort = values['hmi-port'] === undefined ? undefined : Number(values['hmi-port']);
  if (hmiPort !== undefined && !(Number.isInteger(hmiPort) && hmiPort >= 0 && hmiPort <= 65535)) throw new CliUsageError('--hmi-port must be a port number from 0 to 65535');
  const projectRoot = process.cwd();
  const build = path.resolve((values.build as string | undefined) ?? path.join(projectRoot, 'greengrass-build'));
  const root = path.resolve((values.root as string | undefined) ?? path.join(projectRoot, '.nucleus'));
  const recipeDir = path.join(build, 'recipes');
  const artifactDir = path.join(build, 'artifacts');
  const site = fs.existsSync(recipeDir)
    ? fs.readdirSync(recipeDir).find((f) => f.startsWith(`${SITE_COMPONENT}-`) && /\.ya?ml$/.test(f))
    : undefined;
  if (!site) {
    process.stderr.write(`No built bundle in ${build}: run 'npm run build' first (npm start does).\n`);
    return 1;
  }
  const version = site.slice(SITE_COMPONENT.length + 1).replace(/\.ya?ml$/, '');

  // There must be sun to see whatever the hour here. In real time (time scale 1) the plant runs on
  // the gateway's clock at a longitude where the sun stands at 10:00 local solar time now: Analytics
  // computes the sun for the samples' (gateway) time, and its tracker and PR figures must see the
  // sun the simulated plant sees. Faster than real time, the plant's day starts at 10:00 UTC and
  // its time runs ahead of the gateway's, so tracker deviations are not meaningful then.
  const now = new Date();
  const sunPlace = timeScale === 1 ? { startTime: now, longitude: ((((10 - (now.getUTCHours() + now.getUTCMinutes() / 60)) * 15 + 540) % 360) - 180) } : {};
  const simulator = await createSiteSimulator({
    host: '127.0.0.1',
    timeScale,
    ...sunPlace,
    logger: createLogger({ component: 'simulator' }, { level: 'warn' }),
  });
  // The control socket the printed `simulator fault --port` command talks to.
  const control = await startControlServer(simulator);
  out(`site simulator: ${simulator.devices().length} Modbus devices on 127.0.0.1:${simulator.port} (time scale ${timeScale})`);

  const nucleus = createNucleus({ rootDir: root, deployment: { componentUpdateTimeoutMs: 5000 } });
  await nucleus.start();
  // `dcmms-edge cloud offline|online --root <root>` reaches this nucleus as it reaches `dcmms-edge nucleus`.
  const cloudSwitch = serveCloudSwitch(nucleus, root, (reachable) => out(`cloud: IoT Core is now ${reachable ? 'reachable again' : 'unreachable (simulated outage; `cloud online` ends it)'}`));
  out(`local Greengrass nucleus running: root ${root}`);
  out(`  IPC socket ${nucleus.socketPath}; nucleus log ${path.join(root, 'logs', 'greengrass.log')}`);
  out(`  IoT Core (embedded MQTT broker) at ${nucleus.iotCore.brokerUrl}`);

  const cloud = await mqtt.connectAsync(nucleus.iotCore.brokerUrl, { protocolVersion: 4, clientId: 'demo-cloud-view' });
  // One readable line per message: batches summarised, health and the Uplink's status only when they change.
  const lastKey = new Map<string, string>();
  const logOf = (componentName: string): string => path.join(root, 'logs', `${componentName}.log`);
  cloud.on('message', (topic, payload) => {
    const { line, key } = describeCloudMessage(topic, payload, logOf);
    if (key !== undefined) {
      if (lastKey.get(topic) === key) return;
      lastKey.set(topic, key);
    }
    out(`cloud <- ${topic}  ${line}`);
  });
  await cloud.subscribeAsync(IOT_ALL_TOPICS_FILTER, { qos: 1 });

  let hmiWatch: NodeJS.Timeout | undefined;
  nucleus.services.on('state', (name: string, state: string) => {
    out(`component ${name} -> ${state}`);
    if (name === LOCAL_HMI && state === 'RUNNING' && !hmiWatch) hmiWatch = watchHmi(path.join(root, 'logs', `${LOCAL_HMI}.log`));
  });

  // A console view of the site's local bus: device status changes, and a telemetry digest.
  const siteId = 'demo-site';
  const polls = new Map<string, { n: number; power?: number }>();
  nucleus.observe(filters.deviceStatus(siteId).filter, (_topic, m) => {
    const s = 'jsonMessage' in m ? validateDeviceStatus(m.jsonMessage) : undefined;
    // Changes only: the adapter repeats every status on its heartbeat for late subscribers.
    if (s?.ok && s.value.heartbeat !== true) out(`device ${s.value.assetId}: ${s.value.state}${s.value.message ? ` (${s.value.message})` : ''}`);
  });
  // Alarms as they happen, one line each (the journal's replays and snapshots are not news).
  nucleus.observe(filters.alarms(siteId).filter, (_topic, m) => {
    const a = 'jsonMessage' in m ? validateAlarm(m.jsonMessage) : undefined;
    if (a?.ok && a.value.replayed !== true) out(`ALARM ${alarmText(a.value)}`);
  });
  nucleus.observe(filters.rawTelemetry(siteId).filter, (_topic, m) => {
    const t = 'jsonMessage' in m ? validateTelemetry(m.jsonMessage) : undefined;
    if (!t?.ok) return;
    const w = t.value.points['103.W']?.v;
    polls.set(t.value.assetId, { n: (polls.get(t.value.assetId)?.n ?? 0) + 1, power: typeof w === 'number' ? w : undefined });
  });
  const digest = setInterval(() => {
    if (polls.size === 0) return;
    const parts = [...polls].map(([asset, p]) => `${asset} ${p.n}${p.power !== undefined ? ` (${Math.round(p.power)} W)` : ''}`);
    out(`telemetry in the last 30 s: ${parts.join(', ')}`);
    polls.clear();
  }, 30_000);

  out(`deploying ${SITE_COMPONENT}=${version} from ${build}`);
  const devices = simulator.deviceConfig({ pollIntervalMs: 1000 });
  const id = nucleus.deployments.submit({
    rootComponentsToAdd: { [SITE_COMPONENT]: version },
    rootComponentsToRemove: [],
    // The demo wants to see a health report within seconds rather than every 5 minutes.
    configuration: {
      // Health reports any component of the bundle that never reports as missing.
      'com.dcmms.edge.Health': {
        merge: { reportIntervalMs: 15000, initialReportDelayMs: 2000, expectedComponents: IMPLEMENTED_COMPONENTS.map((c) => c.short) },
        reset: [],
      },
      // The device list is complete each time (a deployment's list replaces the previous one).
      'com.dcmms.edge.ModbusAdapter': { merge: { ...devices }, reset: [] },
      // The site's assets are declared, so their telemetry is taken whichever component starts first.
      'com.dcmms.edge.Processor': { merge: { assets: devices.devices.map((d) => d.assetId) }, reset: [] },
      // Analytics with the simulated plant: its location, inverters, weather station and tracker.
      'com.dcmms.edge.Analytics': { merge: { ...simulatorAnalyticsConfig(simulator.devices(), 'longitude' in sunPlace ? { longitude: sunPlace.longitude } : {}), alarmThresholds: { stringForMs: DEMO_STRING_FOR_MS } }, reset: [] },
      // MLInference with the simulated plant: its inverters, weather station, tracker and location
      // (its first scores come once 5 minutes of a 15-minute window have been seen).
      'com.dcmms.edge.MLInference': { merge: { ...simulatorMlInferenceConfig(simulator.devices(), 'longitude' in sunPlace ? { longitude: sunPlace.longitude } : {}) }, reset: [] },
      // The HMI's port only when asked (two demos, or a demo beside the tests, cannot share 8443).
      ...(hmiPort === undefined ? {} : { [LOCAL_HMI]: { merge: { port: hmiPort }, reset: [] } }),
    },
    recipeDirectoryPath: recipeDir,
    artifactsDirectoryPath: artifactDir,
    failureHandlingPolicy: 'DO_NOTHING',
  });
  await nucleus.deployments.whenIdle();
  const status = nucleus.deployments.status(id);
  out(`deployment ${id}: ${status?.status} ${status?.deploymentStatusDetails?.deploymentErrorStack?.join('; ') ?? ''}`);
  const rel = (p: string): string => path.relative(projectRoot, p) || '.';
  const paths = storePaths(root);
  out(`stores (SQLite, read them with the commands below while it runs):`);
  out(`  telemetry store  ${rel(paths.store)}`);
  out(`  rollups          ${rel(paths.rollups)}`);
  out(`  cloud outbox     ${rel(paths.outbox)}`);
  out(`  logs             ${rel(path.join(root, 'logs'))}/<component>.log`);
  const r = rel(root);
  out('try, in another terminal:');
  out(`  npx dcmms-edge status --root ${r}`);
  out(`  npx dcmms-edge component list --root ${r}`);
  out(`  npx dcmms-edge simulator fault --port ${simulator.port} --kind string-fault --unit 1 --string 2   (an ALARM line about 1-2 minutes later)`);
  out(`  npx dcmms-edge alarms --root ${r}`);
  out(`  npx dcmms-edge analytics --root ${r}`);
  out(`  npx dcmms-edge query --db ${rel(paths.store)} --asset INV-01 --point 103.W --from now-2m --to now`);
  out(`  npx dcmms-edge cloud offline --root ${r}   (then: npx dcmms-edge cloud online --root ${r})`);
  out('Ctrl-C stops the nucleus and every component.');

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  out('stopping');
  clearInterval(digest);
  if (hmiWatch) clearInterval(hmiWatch);
  cloudSwitch.close();
  await cloud.endAsync();
  await nucleus.close();
  await control.close();
  await simulator.close();
  return status?.status === 'SUCCEEDED' ? 0 : 1;
}
