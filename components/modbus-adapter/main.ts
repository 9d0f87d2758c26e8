/**
 * Entry point of com.dcmms.edge.ModbusAdapter (bundled by scripts/build.js to main.js; run by the
 * recipe as `node {artifacts:path}/main.js`). The only file of this component that touches
 * `process`, the environment and the real IPC client. The serial port's native binding is found
 * through DCMMS_SERIALPORT_BINDING (set by the recipe; see nativeBindingPlugin in scripts/build.js).
 */
import { greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import { version } from '../../package.json';
import { runComponent } from '../lib/component';
import { modbusConfigSpec } from './config';
import { createModbusAdapter } from './adapter';

runComponent(
  {
    name: 'com.dcmms.edge.ModbusAdapter',
    version,
    config: modbusConfigSpec,
    create: (deps, config) => createModbusAdapter(deps, config),
  },
  { process, createIpcClient: () => greengrasscoreipc.createClient() },
);
