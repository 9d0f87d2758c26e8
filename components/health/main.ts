/**
 * Entry point of com.dcmms.edge.Health (bundled by scripts/build.js to main.js; run by the recipe
 * as `node {artifacts:path}/main.js`). The only file of this component that touches `process` and
 * the real IPC client: `greengrasscoreipc.createClient()` reads
 * AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT and SVCUID, which the nucleus sets for every
 * component process (Greengrass Developer Guide, "Component environment variable reference").
 */
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { version } from '../../package.json';
import { runComponent } from '../lib/component';
import { healthConfigSpec } from './config';
import { createHealth } from './health';
import { createSystemSampler } from './system';

runComponent(
  {
    name: 'com.dcmms.edge.Health',
    version,
    config: healthConfigSpec,
    create: (deps, config) => createHealth({ ...deps, system: createSystemSampler() }, config),
  },
  { process, createIpcClient: () => greengrasscoreipc.createClient() },
);
