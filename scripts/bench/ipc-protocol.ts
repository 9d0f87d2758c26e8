/**
 * What the IPC benchmark's orchestrator (./ipc.ts) and its worker components (./ipc-worker.ts)
 * agree on: topics, the data message, the result files. The workers coordinate over local pub/sub
 * only (no side channel) and hand their figures back in `result.json` in their work folder.
 */

/** Every topic lives under this prefix; the recipes' pubsub policies grant exactly `bench/*`. */
export const TOPIC_RESOURCE = 'bench/*';

export const TOPICS = {
  /** Throughput data: publisher -> subscribers. */
  data: 'bench/data',
  /** Subscriber -> publisher: "I am subscribed", `{ component }`. */
  ready: 'bench/ctl/ready',
  /** Publisher -> subscribers: "who is there?" (a subscriber answers with ready again). */
  hello: 'bench/ctl/hello',
  /** Publisher -> subscribers: all publishes answered, `{ sent }`. */
  done: 'bench/ctl/done',
  /** The latency component publishes to and receives from this topic itself. */
  latency: 'bench/lat',
} as const;

/** The data message; its JSON serialisation is exactly the scenario's payload size. */
export interface DataMessage {
  seq: number;
  /** Publish time, µs of CLOCK_MONOTONIC (process.hrtime.bigint() / 1000), shared by all processes. */
  t: number;
  pad: string;
}

export interface LatencyFigures {
  samples: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  meanUs: number;
}

export interface PublisherResult {
  role: 'pub';
  component: string;
  /** Publishes made (each with its own seq). */
  attempted: number;
  /** Publishes answered with success. */
  sent: number;
  /** Publishes answered with an error (a lost message). */
  errors: number;
  firstError?: string;
  messageBytes: number;
  window: number;
  /** hrtime ns (decimal strings): first publish sent, last response received. */
  startNs: string;
  endNs: string;
}

export interface SubscriberResult {
  role: 'sub';
  component: string;
  /** `sent` from the publisher's done message; null if the connection was lost before it came. */
  expected: number | null;
  /** The nucleus closed the connection during the run (e.g. its outbound limit for a slow reader). */
  disconnected?: string;
  received: number;
  /** Distinct sequence numbers received. */
  unique: number;
  /** Distinct sequence numbers received when `done` arrived (less than `expected`: done overtook data). */
  uniqueAtDone?: number;
  duplicates: number;
  /** Messages that arrived with a lower seq than one already seen. */
  outOfOrder: number;
  /** hrtime ns (decimal strings) of the first and the last data message. */
  firstNs: string;
  lastNs: string;
  /** Publish -> delivery under load (includes the publisher's window of queued calls). */
  latency: LatencyFigures;
}

export interface LatencyResult {
  role: 'lat';
  component: string;
  messageBytes: number;
  /** Publish call: request sent -> PublishToTopic response received. */
  publishRtt: LatencyFigures;
  /** Publish call sent -> the message delivered on the component's own subscription. */
  delivery: LatencyFigures;
  startNs: string;
  endNs: string;
}

export interface ErrorResult {
  role: 'error';
  component: string;
  error: string;
}

export type WorkerResult = PublisherResult | SubscriberResult | LatencyResult | ErrorResult;

export const RESULT_FILE = 'result.json';

/** Percentiles by nearest rank over µs samples (sorted in place). */
export function latencyFigures(samplesUs: Float64Array): LatencyFigures {
  const n = samplesUs.length;
  if (n === 0) return { samples: 0, p50Us: 0, p99Us: 0, maxUs: 0, meanUs: 0 };
  samplesUs.sort();
  const rank = (p: number): number => samplesUs[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += samplesUs[i]!;
  return { samples: n, p50Us: rank(0.5), p99Us: rank(0.99), maxUs: samplesUs[n - 1]!, meanUs: sum / n };
}
