/**
 * Turning one SubscribeToTopic event into a handler call: decode (jsonMessage, or JSON sent as
 * binaryMessage), validate with the filter's contract validator, call the handler, and make sure
 * nothing a handler does can take the bus down: errors are caught, counted and logged (rate
 * limited). An InputError thrown by a handler is a rejection filed under its reason; a FatalError
 * is passed to `onFatal` (a defect the component cannot run with).
 */
import { ErrorCode, FatalError, InputError, TransientError, errorMessage } from './errors';
import type { TopicFilter } from './contract';
import type { IpcPayload, SubscriptionMessageLike } from './ipc';
import type { LimitedLog } from './log-limit';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

/** Handler for validated messages. Throw an InputError to reject (counted under its reason). */
export type MessageHandler<P> = (payload: P, topic: string) => void | Promise<void>;

export interface DispatchDeps {
  metrics: Metrics;
  log: Logger;
  limited: LimitedLog;
  fatal: (err: FatalError) => void;
}

function payloadText(p: IpcPayload | undefined): string {
  if (p === undefined) return '';
  if (typeof p === 'string') return p;
  if (ArrayBuffer.isView(p)) return Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('utf8');
  return Buffer.from(p).toString('utf8');
}

export function rejectMessage(d: DispatchDeps, reason: string, topic: string, detail: string): void {
  d.metrics.reject(reason);
  d.limited(`reject:${reason}`, (suppressed) => d.log.warn('message rejected', { topic, reason, detail, suppressed }));
}

export function handlerFailed(d: DispatchDeps, err: unknown, topic: string): void {
  if (err instanceof InputError) return rejectMessage(d, err.reason, topic, err.message);
  if (err instanceof FatalError) return d.fatal(err);
  const e = new TransientError(ErrorCode.HANDLER_FAILED, `handler for ${topic} failed: ${errorMessage(err)}`, { cause: err });
  d.metrics.recordError(e);
  d.limited(`handler:${topic}`, (suppressed) => d.log.error('message handler failed', { topic, err, suppressed }));
}

export function dispatchMessage<P>(d: DispatchDeps, filter: TopicFilter<P>, handler: MessageHandler<P>, m: SubscriptionMessageLike): void {
  d.metrics.incIn();
  const topic = m.jsonMessage?.context?.topic ?? m.binaryMessage?.context?.topic ?? filter.filter;
  let data: unknown;
  if (m.jsonMessage) data = m.jsonMessage.message;
  else if (m.binaryMessage) {
    try {
      data = JSON.parse(payloadText(m.binaryMessage.message));
    } catch {
      return rejectMessage(d, 'not_json', topic, 'binary message is not JSON');
    }
  } else return rejectMessage(d, 'empty_message', topic, 'neither jsonMessage nor binaryMessage');
  const v = filter.validate(data);
  if (!v.ok) return rejectMessage(d, v.code, topic, v.reason);
  try {
    const r = handler(v.value, topic);
    if (r && typeof r.then === 'function') r.then(undefined, (err: unknown) => handlerFailed(d, err, topic));
  } catch (err) {
    handlerFailed(d, err, topic);
  }
}

/** Run a callback from a stream event; a throw is counted and logged, never propagated. */
export function safely(d: DispatchDeps, what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    d.metrics.recordError(err);
    d.log.error(`${what} failed`, { err });
  }
}
