/**
 * Entry point of com.dcmms.edge.Aggregator (bundled by scripts/build.js to main.js; run by the
 * recipe as `node {artifacts:path}/main.js` with the component's work folder as cwd). The only
 * file of this component that touches `process`, the environment and the real IPC client.
 *  - DCMMS_BETTER_SQLITE3_BINDING: better-sqlite3's addon shipped beside main.js (docs/build.md);
 *  - DCMMS_PROCESSOR_STORE: the Processor's store, `{com.dcmms.edge.Processor:work:path}/raw.db`
 *    (recipe variables are interpolated in Lifecycle, not in configuration; the cross-component
 *    form resolves because the recipe declares the Processor as a dependency).
 */
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { version } from '../../package.json';
import { runComponent } from '../lib/component';
import { createAggregator } from './aggregator';
import { aggregatorConfigSpec } from './config';

const nativeBinding = process.env['DCMMS_BETTER_SQLITE3_BINDING'];
const defaultStorePath = process.env['DCMMS_PROCESSOR_STORE'];

runComponent(
  {
    name: 'com.dcmms.edge.Aggregator',
    version,
    config: aggregatorConfigSpec,
    create: (deps, config) =>
      createAggregator({ ...deps, workDir: process.cwd(), ...(nativeBinding ? { nativeBinding } : {}), ...(defaultStorePath ? { defaultStorePath } : {}) }, config),
  },
  { process, createIpcClient: () => greengrasscoreipc.createClient() },
);
