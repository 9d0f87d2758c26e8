/**
 * Entry point of com.dcmms.edge.Analytics (bundled by scripts/build.js to main.js; run by the
 * recipe as `node {artifacts:path}/main.js` with the component's work folder as cwd). The only
 * file of this component that touches `process`, the environment and the real IPC client.
 * DCMMS_BETTER_SQLITE3_BINDING names better-sqlite3's addon shipped beside main.js (docs/build.md);
 * DCMMS_PROCESSOR_STORE the Processor's store, which Analytics reads only.
 */
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { version } from '../../package.json';
import { runComponent } from '../lib/component';
import { createAnalytics } from './analytics';
import { analyticsConfigSpec } from './config';

const nativeBinding = process.env['DCMMS_BETTER_SQLITE3_BINDING'];
const defaultStorePath = process.env['DCMMS_PROCESSOR_STORE'];

runComponent(
  {
    name: 'com.dcmms.edge.Analytics',
    version,
    config: analyticsConfigSpec,
    create: (deps, config) =>
      createAnalytics({ ...deps, workDir: process.cwd(), ...(nativeBinding ? { nativeBinding } : {}), ...(defaultStorePath ? { defaultStorePath } : {}) }, config),
  },
  { process, createIpcClient: () => greengrasscoreipc.createClient() },
);
