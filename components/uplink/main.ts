/**
 * Entry point of com.dcmms.edge.Uplink (bundled by scripts/build.js to main.js; run by the recipe
 * as `node {artifacts:path}/main.js` with the component's work folder as cwd). The only file of this
 * component that touches `process`, the environment and the real IPC client.
 * DCMMS_BETTER_SQLITE3_BINDING names better-sqlite3's addon shipped beside main.js (docs/build.md).
 * S3 credentials come from the nucleus's Token Exchange Service only (AWS_CONTAINER_CREDENTIALS_FULL_URI
 * and AWS_CONTAINER_AUTHORIZATION_TOKEN), never from other AWS variables or profiles in the
 * environment; S3 keys sit under the gateway's thing name (AWS_IOT_THING_NAME).
 */
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { version } from '../../package.json';
import { runComponent } from '../lib/component';
import { uplinkConfigSpec } from './config';
import { createUplink } from './uplink';

const nativeBinding = process.env['DCMMS_BETTER_SQLITE3_BINDING'];
// The gateway's region, set by the nucleus (Greengrass Developer Guide, "Component environment variable
// reference"): S3's when `s3.region` is empty.
const awsRegion = process.env['AWS_REGION'];
const thingName = process.env['AWS_IOT_THING_NAME'];
const tes = { fullUri: process.env['AWS_CONTAINER_CREDENTIALS_FULL_URI'], authorizationToken: process.env['AWS_CONTAINER_AUTHORIZATION_TOKEN'] };
// Stream Manager: its port when the nucleus sets it, and the same component token (Greengrass developer guide, "Stream manager").
const smPortEnv = process.env['STREAM_MANAGER_SERVER_PORT'];
const smToken = process.env['AWS_CONTAINER_AUTHORIZATION_TOKEN'];

runComponent(
  {
    name: 'com.dcmms.edge.Uplink',
    version,
    config: uplinkConfigSpec,
    create: (deps, config) => createUplink({ ...deps, workDir: process.cwd(), tes, ...(smPortEnv ? { streamManagerPortEnv: smPortEnv } : {}), ...(smToken ? { streamManagerToken: smToken } : {}), ...(nativeBinding ? { nativeBinding } : {}), ...(awsRegion ? { awsRegion } : {}), ...(thingName ? { thingName } : {}) }, config),
  },
  { process, createIpcClient: () => greengrasscoreipc.createClient() },
);
