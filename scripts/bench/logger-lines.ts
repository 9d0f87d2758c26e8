/** The lines the logger benchmark writes (shared by the in-process part and the worker). */

/** Fields of a typical line: a rate-limited rejection as the Processor logs it. */
export function typicalFields(): Record<string, unknown> {
  return { reason: 'out_of_range', detail: "point '103.W' value 1.2e9 is outside [-1e9, 1e9]", assetId: 'INV-01', suppressed: 3 };
}

/** A configuration as `configuration updated` logs it: nested objects and arrays, one secret. */
export function configFields(): Record<string, unknown> {
  const assets = Array.from({ length: 20 }, (_, i) => ({
    assetId: `INV-${String(i + 1).padStart(2, '0')}`,
    model: 'sunspec-inverter',
    connection: { host: `10.0.0.${i + 10}`, port: 502, unitId: 1, password: 'not-a-real-password' },
    pollIntervalMs: 1000,
    points: ['W', 'VA', 'VAr', 'PF', 'A', 'PhVphA', 'Hz', 'DCV', 'DCW', 'TmpCab'],
  }));
  return { config: { siteId: 'plant-7', metricsIntervalMs: 10000, logLevel: 'info', assets } };
}
