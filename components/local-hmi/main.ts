/**
 * Entry point of com.dcmms.edge.LocalHmi (bundled by scripts/build.js to main.js; run by the
 * recipe as `node {artifacts:path}/main.js` with the component's work folder as cwd). The only
 * file of this component that touches `process`, the environment and the real IPC client.
 *  - DCMMS_BETTER_SQLITE3_BINDING: better-sqlite3's addon shipped beside main.js (docs/build.md);
 *  - DCMMS_PROCESSOR_STORE / DCMMS_AGGREGATOR_DB: the Processor's store and the Aggregator's
 *    rollups, read-only (the recipe names them from the dependencies' work folders);
 *  - DCMMS_HMI_WEB_DIR: serve the web app from this folder instead of the copy built into main.js.
 */
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { version } from '../../package.json';
import { runComponent } from '../lib/component';
import { localHmiConfigSpec } from './config';
import { createLocalHmi } from './local-hmi';
import { dirAssets, embeddedAssets, NO_WEB_APP } from './web-assets';
// Filled in by scripts/build.js (hmiWebPlugin) from components/local-hmi/web/dist; empty otherwise.
import { WEB_FILES } from './web-embedded';

const env = process.env;
const nativeBinding = env['DCMMS_BETTER_SQLITE3_BINDING'];
const defaultStorePath = env['DCMMS_PROCESSOR_STORE'];
const defaultRollupPath = env['DCMMS_AGGREGATOR_DB'];
const webDir = env['DCMMS_HMI_WEB_DIR'];
const web = webDir ? dirAssets(webDir) : Object.keys(WEB_FILES).length > 0 ? embeddedAssets(WEB_FILES) : NO_WEB_APP;

runComponent(
  {
    name: 'com.dcmms.edge.LocalHmi',
    version,
    config: localHmiConfigSpec,
    create: (deps, config) =>
      createLocalHmi(
        { ...deps, workDir: process.cwd(), web, ...(nativeBinding ? { nativeBinding } : {}), ...(defaultStorePath ? { defaultStorePath } : {}), ...(defaultRollupPath ? { defaultRollupPath } : {}) },
        config,
      ),
  },
  { process, createIpcClient: () => greengrasscoreipc.createClient() },
);
