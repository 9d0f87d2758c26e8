/**
 * Entry point of com.dcmms.edge.LocalControl (bundled by scripts/build.js to main.js; run by the
 * recipe as `node {artifacts:path}/main.js` with the component's work folder as cwd). The only
 * file of this component that touches `process`, the environment and the real IPC client.
 * DCMMS_BETTER_SQLITE3_BINDING names better-sqlite3's addon shipped beside main.js (docs/build.md).
 */
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { version } from '../../package.json';
import { runComponent } from '../lib/component';
import { localControlConfigSpec } from './config';
import { createLocalControl } from './local-control';

const nativeBinding = process.env['DCMMS_BETTER_SQLITE3_BINDING'];

runComponent(
  {
    name: 'com.dcmms.edge.LocalControl',
    version,
    config: localControlConfigSpec,
    create: (deps, config) => createLocalControl({ ...deps, workDir: process.cwd(), ...(nativeBinding ? { nativeBinding } : {}) }, config),
  },
  { process, createIpcClient: () => greengrasscoreipc.createClient() },
);
