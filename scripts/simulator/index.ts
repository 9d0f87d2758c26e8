/** The site simulator: a small solar plant behind one Modbus TCP port. See docs/simulator.md. */
export { createSiteSimulator, MAX_INVERTERS, OPERATION_KINDS, UNIT_IDS } from './site';
export type { SiteSimulator, SiteSimulatorOptions, SiteState, SimulatedDevice, SimulatorDeviceConfig, ActiveFault, FaultSpec, Operation } from './site';
export { combinerMap, COMBINER_MAP_NAME, COMBINER_MAX_STRINGS, COMBINER_STATUS_BITS } from './combiner';
export type { CombinerChannel } from './combiner';
export { FAULT_KINDS, SimulatorError } from './faults';
export { REGISTER_MAPS, WEATHER_MAP, TRACKER_MAP, IO_MAP, TRACKER_MODES } from './map-devices';
export type { MapPoint } from './map-devices';
export { PLANT_DEFAULTS, IO_INPUTS, IO_RELAYS } from './plant';
export type { PlantOptions } from './plant';
export { SUNSPEC_BASE } from './sunspec-device';
