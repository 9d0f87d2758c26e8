/**
 * `dcmms-edge demo` (what `npm start` runs after the build): the local nucleus with the built
 * bundle deployed on the demo site, the way a fleet engineer would try it with the Greengrass CLI.
 * It prints component states as they change and every message that reaches "the cloud" (the
 * embedded IoT Core broker), until Ctrl-C.
 */
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { IOT_ALL_TOPICS_FILTER } from '../../components/lib/contract';
import { createNucleus } from '../runtime/nucleus';
import { parse } from './args';

const SITE_COMPONENT = 'com.dcmms.edge.Site';

function out(line: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${line}\n`);
}

export async function runDemo(args: string[]): Promise<number> {
  const { values } = parse(args, { root: { type: 'string' }, build: { type: 'string' } });
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

  const nucleus = createNucleus({ rootDir: root, deployment: { componentUpdateTimeoutMs: 5000 } });
  await nucleus.start();
  out(`local Greengrass nucleus running: root ${root}`);
  out(`  IPC socket ${nucleus.socketPath}; nucleus log ${path.join(root, 'logs', 'greengrass.log')}`);
  out(`  IoT Core (embedded MQTT broker) at ${nucleus.iotCore.brokerUrl}`);

  const cloud = await mqtt.connectAsync(nucleus.iotCore.brokerUrl, { protocolVersion: 4, clientId: 'demo-cloud-view' });
  cloud.on('message', (topic, payload) => {
    const text = payload.toString();
    out(`cloud <- ${topic}  ${text.length > 400 ? text.slice(0, 400) + '…' : text}`);
  });
  await cloud.subscribeAsync(IOT_ALL_TOPICS_FILTER, { qos: 1 });

  nucleus.services.on('state', (name: string, state: string) => out(`component ${name} -> ${state}`));

  out(`deploying ${SITE_COMPONENT}=${version} from ${build}`);
  const id = nucleus.deployments.submit({
    rootComponentsToAdd: { [SITE_COMPONENT]: version },
    rootComponentsToRemove: [],
    // The demo wants to see a health report within seconds rather than every 5 minutes.
    configuration: { 'com.dcmms.edge.Health': { merge: { reportIntervalMs: 15000, initialReportDelayMs: 2000 }, reset: [] } },
    recipeDirectoryPath: recipeDir,
    artifactsDirectoryPath: artifactDir,
    failureHandlingPolicy: 'DO_NOTHING',
  });
  await nucleus.deployments.whenIdle();
  const status = nucleus.deployments.status(id);
  out(`deployment ${id}: ${status?.status} ${status?.deploymentStatusDetails?.deploymentErrorStack?.join('; ') ?? ''}`);
  out(`try, in another terminal:  npx dcmms-edge component list --root ${path.relative(projectRoot, root) || '.'}`);
  out('Ctrl-C stops the nucleus and every component.');

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  out('stopping');
  await cloud.endAsync();
  await nucleus.close();
  return status?.status === 'SUCCEEDED' ? 0 : 1;
}
