/**
 * The models' feature definitions: one TypeScript source shared with the training pipeline
 * (scripts/training/features.ts, which the data generator uses and test/unit/ml-features.test.ts
 * checks against the Python pipeline's golden file). Re-exported here so the component names one
 * module; the definitions themselves must not be copied (a second copy could drift from what the
 * models were trained on).
 */
export {
  ANOMALY_FEATURES,
  BLOCK_MIN,
  DAYLIGHT_ELEVATION,
  FAULT_FEATURES,
  HORIZON,
  MIN_SAMPLES,
  PAST_STEPS,
  WINDOW_MIN,
  clearSkyMinutes,
  forecastFeatures,
  windowFeatures,
  type ForecastMinutes,
  type InverterWindow,
  type SiteGeometry,
  type SiteWindow,
  type WindowFeatureName,
} from '../../scripts/training/features';
