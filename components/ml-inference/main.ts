/**
 * Entry point of com.dcmms.edge.MLInference (bundled by scripts/build.js to main.js; run by the
 * recipe as `node {artifacts:path}/main.js` with the component's work folder as cwd). The only
 * file of this component that touches `process`, the environment and the real IPC client.
 * DCMMS_BETTER_SQLITE3_BINDING and DCMMS_ONNXRUNTIME_BINDING name the native addons shipped beside
 * main.js (docs/build.md); DCMMS_PROCESSOR_STORE the Processor's store, read only;
 * DCMMS_MODELS_DIR the models component's artifact folder (docs/ml-inference.md "Models").
 */
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { version } from '../../package.json';
import { runComponent } from '../lib/component';
import { mlInferenceConfigSpec } from './config';
import { createMlInference } from './ml-inference';

const nativeBinding = process.env['DCMMS_BETTER_SQLITE3_BINDING'];
const defaultStorePath = process.env['DCMMS_PROCESSOR_STORE'];
const defaultModelDir = process.env['DCMMS_MODELS_DIR'];

runComponent(
  {
    name: 'com.dcmms.edge.MLInference',
    version,
    config: mlInferenceConfigSpec,
    create: (deps, config) =>
      createMlInference(
        {
          ...deps,
          workDir: process.cwd(),
          ...(nativeBinding ? { nativeBinding } : {}),
          ...(defaultStorePath ? { defaultStorePath } : {}),
          ...(defaultModelDir ? { defaultModelDir } : {}),
        },
        config,
      ),
  },
  { process, createIpcClient: () => greengrasscoreipc.createClient() },
);
