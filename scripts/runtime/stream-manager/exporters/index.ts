/**
 * The Stream Manager's exporters, one factory per export kind the server accepts (docs/stream-manager.md
 * "Exports"). `iotAnalytics` has none: AWS IoT Analytics is no longer offered to new customers and its
 * end of support is 2025-12-15, so a stream asking for it is refused at create/update time.
 * A factory throws ConfigError (naming the key) for an export config it cannot use.
 */
import type { ExportKind, ExporterFactory } from '../types';
import { createHttpExporter } from './http';
import { createKinesisExporter } from './kinesis';
import { createS3TaskExporter } from './s3-task';
import { createSiteWiseRecorder } from './sitewise';

export const exporterFactories: Partial<Record<ExportKind, ExporterFactory>> = {
  kinesis: createKinesisExporter,
  IotSitewise: (config, streamName, env) => createSiteWiseRecorder(config, streamName, env),
  s3TaskExecutor: createS3TaskExporter,
  http: createHttpExporter,
};
