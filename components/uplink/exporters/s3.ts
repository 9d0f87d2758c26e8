/**
 * S3 exporter: one gzip NDJSON object per batch, with a deterministic key, so a retry overwrites its
 * own object instead of adding a second one (PutObject replaces an object of the same key: Amazon S3
 * API Reference, PutObject).
 *
 * Credentials come from the Token Exchange Service and from nothing else: the AWS SDK's HTTP
 * (container) credential provider, given the values the nucleus sets for a component that depends on
 * aws.greengrass.TokenExchangeService (AWS_CONTAINER_CREDENTIALS_FULL_URI and
 * AWS_CONTAINER_AUTHORIZATION_TOKEN; Greengrass developer guide, "Token exchange service"). Not the
 * SDK's default chain: it tries AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws first,
 * so a developer's keys passed through by a runtime would sign the gateway's uploads, with rights the
 * gateway's role does not have. Without the TES variables the exporter refuses to start (ConfigError
 * naming them). The SDK retries nothing here (maxAttempts 1): the sender's backoff owns retries. A
 * credential error (ExpiredToken, InvalidToken, a 403, ...) replaces the credential provider; the
 * SDK asks it once the credentials it holds are within 5 minutes of their expiry (an ExpiredToken
 * means they are). Unexpired ones it keeps, as the nucleus's TES would: it caches credentials until
 * 5 minutes before they expire.
 *
 * Checksums only when required: S3-compatible stores (s3rver in tests) reject the aws-chunked
 * CRC32 bodies the SDK sends by default since 3.729 (aws/aws-sdk-js-v3#6810).
 */
import { PutObjectCommand, S3Client, type PutObjectCommandInput } from '@aws-sdk/client-s3';
import { fromHttp } from '@aws-sdk/credential-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsCredentialIdentityProvider } from '@aws-sdk/types';
import { ConfigError, errorMessage } from '../../lib/errors';
import { isRecord } from '../../lib/contract';
import type { RecordClass } from '../classes';
import { ExportError, type ExportBatch, type Exporter } from './types';

export interface S3ExporterOptions {
  siteId: string;
  /**
   * The gateway's AWS IoT thing name (AWS_IOT_THING_NAME). Every key starts with
   * `<prefix><thingName>/`: the Token Exchange role may write only there (IAM policy variable
   * `${credentials-iot:ThingName}`), so one gateway cannot overwrite another's data.
   */
  thingName: string;
  bucket: string;
  /** Ends with `/` or is empty (the Uplink's schema checks it); CDK sets `fleets/<fleet>/`. */
  prefix: string;
  endpoint: string;
  region: string;
  forcePathStyle: boolean;
  requestTimeoutMs: number;
  /** Goes into every key, so two outboxes (a reinstalled gateway) never write the same key. */
  outboxId: string;
  /** The only credential source: the Token Exchange Service the nucleus gives the component. */
  tes: TesEndpoint;
}

/** The nucleus's Token Exchange Service, as a component sees it in its environment. */
export interface TesEndpoint {
  /** AWS_CONTAINER_CREDENTIALS_FULL_URI (`http://localhost:<port>/2016-11-01/credentialprovider/`). */
  fullUri: string | undefined;
  /** AWS_CONTAINER_AUTHORIZATION_TOKEN: the component's token for it. */
  authorizationToken: string | undefined;
}

/** How long one credentials request to the TES may take (the nucleus may fetch from AWS IoT's credentials provider first). */
const TES_TIMEOUT_MS = 3000;
/** The probe's deadline (or requestTimeoutMs if shorter): while S3 is offline the Uplink probes every few seconds. */
export const PROBE_TIMEOUT_MS = 5000;

/**
 * A credential provider factory over the TES only. fromHttp falls back to process.env for every
 * option left undefined; the relative URI and token file are pinned to '' so an ECS-style
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI in the environment cannot take precedence over the TES.
 */
export function tesCredentials(tes: TesEndpoint): () => AwsCredentialIdentityProvider {
  const missing = [
    ...(tes.fullUri ? [] : ['AWS_CONTAINER_CREDENTIALS_FULL_URI']),
    ...(tes.authorizationToken ? [] : ['AWS_CONTAINER_AUTHORIZATION_TOKEN']),
  ];
  if (missing.length > 0) {
    throw new ConfigError(
      missing[0]!,
      `the S3 exporter takes credentials only from the Token Exchange Service, and ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set: ` +
        'the component must depend on aws.greengrass.TokenExchangeService (AWS_ACCESS_KEY_ID, AWS_PROFILE and ~/.aws are never used)',
    );
  }
  return () =>
    fromHttp({
      awsContainerCredentialsFullUri: tes.fullUri,
      awsContainerAuthorizationToken: tes.authorizationToken,
      awsContainerCredentialsRelativeUri: '',
      awsContainerAuthorizationTokenFile: '',
      timeout: TES_TIMEOUT_MS,
      // No retries inside one attempt: the sender's backoff and the probe retry, within their deadlines.
      maxRetries: 0,
    });
}

const CREDENTIAL_ERRORS = new Set(['ExpiredToken', 'ExpiredTokenException', 'InvalidToken', 'InvalidAccessKeyId', 'TokenRefreshRequired', 'CredentialsProviderError']);

/** AWS IoT thing names: letters, digits, `:`, `_`, `-`, 1 to 128 (AWS IoT API Reference, CreateThing). */
const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;

/**
 * `<prefix><thingName>/<class>/<yyyy>/<mm>/<dd>/<outboxId>-<seq>.ndjson.gz`; the date is the batch's
 * oldest record's, UTC. The thing name comes first because the grant is per thing; the site is in
 * the thing name (`dcmms_<fleet>_<site>_<serial>`) and in the object metadata (docs/cdk.md).
 */
export function s3Key(prefix: string, thingName: string, outboxId: string, b: { seq: number; cls: RecordClass; oldestAt: number }): string {
  const d = new Date(b.oldestAt);
  const day = `${d.getUTCFullYear()}/${String(d.getUTCMonth() + 1).padStart(2, '0')}/${String(d.getUTCDate()).padStart(2, '0')}`;
  return `${prefix}${thingName}/${b.cls}/${day}/${outboxId}-${String(b.seq).padStart(12, '0')}.ndjson.gz`;
}

function errorName(err: unknown): string {
  if (isRecord(err)) {
    if (typeof err['name'] === 'string' && err['name'] !== 'Error') return err['name'];
    if (typeof err['Code'] === 'string') return err['Code'];
  }
  return 'Error';
}

function httpStatus(err: unknown): number | undefined {
  if (!isRecord(err) || !isRecord(err['$metadata'])) return undefined;
  const s = err['$metadata']['httpStatusCode'];
  return typeof s === 'number' ? s : undefined;
}

export function createS3Exporter(o: S3ExporterOptions): Exporter & { readonly credentialRefreshes: number } {
  if (!THING_NAME.test(o.thingName)) {
    throw new ConfigError('AWS_IOT_THING_NAME', `the S3 exporter needs the gateway's AWS IoT thing name (AWS_IOT_THING_NAME: ${THING_NAME.source}); got ${JSON.stringify(o.thingName)}`);
  }
  const makeProvider = tesCredentials(o.tes);
  let provider = makeProvider();
  let refreshes = 0;
  const client = new S3Client({
    region: o.region,
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    forcePathStyle: o.forcePathStyle,
    credentials: () => provider(),
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({ connectionTimeout: Math.min(o.requestTimeoutMs, 10000), requestTimeout: o.requestTimeoutMs }),
  });
  /** One PutObject with a hard deadline for all of it (credentials, connection, answer); S3 errors become ExportErrors. */
  const put = async (input: Omit<PutObjectCommandInput, 'Bucket'>, deadlineMs: number): Promise<void> => {
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        ac.abort();
        reject(new ExportError('S3_TIMEOUT', `PutObject ${input.Key}: no answer within ${deadlineMs} ms`));
      }, deadlineMs);
    });
    try {
      await Promise.race([client.send(new PutObjectCommand({ Bucket: o.bucket, ...input }), { abortSignal: ac.signal }), deadline]);
    } catch (err) {
      if (err instanceof ExportError) throw err;
      const name = errorName(err);
      const status = httpStatus(err);
      if (CREDENTIAL_ERRORS.has(name) || status === 403) {
        provider = makeProvider();
        refreshes++;
      }
      // A 4xx other than a timeout or throttling is S3 refusing this request, not S3 being away.
      const refused = status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429;
      throw new ExportError(status !== undefined ? `S3_${status}` : `S3_${name}`, `PutObject ${input.Key}: ${name}: ${errorMessage(err)}`, { cause: err, refused });
    } finally {
      clearTimeout(timer);
    }
  };
  const probeKey = `${o.prefix}${o.thingName}/probe/${o.outboxId}.json`;
  const probeBody = JSON.stringify({ thingName: o.thingName, siteId: o.siteId, outboxId: o.outboxId });
  return {
    name: 's3',
    get credentialRefreshes() {
      return refreshes;
    },
    // A slow store must not hold a sender slot for long: requestTimeoutMs bounds the whole request.
    send: (batch: ExportBatch) =>
      put(
        {
          Key: s3Key(o.prefix, o.thingName, o.outboxId, batch),
          Body: batch.body,
          ContentType: 'application/x-ndjson',
          ContentEncoding: 'gzip',
          Metadata: { seq: String(batch.seq), class: batch.cls, count: String(batch.count), 'site-id': o.siteId, 'thing-name': o.thingName },
        },
        o.requestTimeoutMs,
      ),
    /**
     * Resolves only when S3 would accept data now: the same kind of request as a batch (PutObject,
     * same credentials, same bucket, under the same per-thing grant), a body of a few bytes, to one
     * fixed key per outbox (`<prefix><thing>/probe/<outboxId>.json`, outside every class folder), so
     * probing adds no objects. The Uplink calls it every few seconds while S3 is offline; at most
     * PROBE_TIMEOUT_MS each, so a store that does not answer is noticed quickly.
     */
    probe: () => put({ Key: probeKey, Body: probeBody, ContentType: 'application/json', Metadata: { probe: 'true', 'thing-name': o.thingName } }, Math.min(o.requestTimeoutMs, PROBE_TIMEOUT_MS)),
    close: () => {
      client.destroy();
      return Promise.resolve();
    },
  };
}
