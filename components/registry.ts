/**
 * Configuration specs of the implemented components, by Greengrass name. The build validates each
 * recipe's DefaultConfiguration against these, and the tests check recipe and defaults agree.
 * Add a component here when the contract marks it implemented.
 */
import type { ComponentName } from './lib/contract';
import type { ConfigSpec } from './lib/config';
import { aggregatorConfigSpec } from './aggregator/config';
import { analyticsConfigSpec } from './analytics/config';
import { healthConfigSpec } from './health/config';
import { localControlConfigSpec } from './local-control/config';
import { localHmiConfigSpec } from './local-hmi/config';
import { mlInferenceConfigSpec } from './ml-inference/config';
import { modbusConfigSpec } from './modbus-adapter/config';
import { processorConfigSpec } from './processor/config';
import { uplinkConfigSpec } from './uplink/config';

export const CONFIG_SPECS: Partial<Record<ComponentName, ConfigSpec<unknown>>> = {
  'com.dcmms.edge.Aggregator': aggregatorConfigSpec as ConfigSpec<unknown>,
  'com.dcmms.edge.Analytics': analyticsConfigSpec as ConfigSpec<unknown>,
  'com.dcmms.edge.Health': healthConfigSpec as ConfigSpec<unknown>,
  'com.dcmms.edge.LocalControl': localControlConfigSpec as ConfigSpec<unknown>,
  'com.dcmms.edge.LocalHmi': localHmiConfigSpec as ConfigSpec<unknown>,
  'com.dcmms.edge.MLInference': mlInferenceConfigSpec as ConfigSpec<unknown>,
  'com.dcmms.edge.ModbusAdapter': modbusConfigSpec as ConfigSpec<unknown>,
  'com.dcmms.edge.Processor': processorConfigSpec as ConfigSpec<unknown>,
  'com.dcmms.edge.Uplink': uplinkConfigSpec as ConfigSpec<unknown>,
};
