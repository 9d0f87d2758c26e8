/**
 * A Bus for ModbusAdapter tests: records what is published (validated with the contract, so a
 * malformed payload fails the test) and lets the test deliver control commands.
 */
import type { Bus, MessageHandler, Subscription } from '../../lib/bus-types';
import { parseTopic, validatorFor, type ControlCommand, type LocalFamily, type TopicFilter } from '../../lib/contract';

export interface Published {
  topic: string;
  family: LocalFamily | undefined;
  payload: unknown;
}

export class RecordingBus implements Bus {
  readonly published: Published[] = [];
  readonly invalid: string[] = [];
  private handlers: Array<{ filter: TopicFilter<unknown>; handler: MessageHandler<unknown> }> = [];
  private listeners: Array<() => void> = [];
  state: Bus['state'] = 'connected';

  async connect(): Promise<void> {}
  async publish<P extends object>(topic: string, payload: P): Promise<'sent'> {
    const parsed = parseTopic(topic);
    if (!parsed) this.invalid.push(`unknown topic ${topic}`);
    else {
      const v = validatorFor(parsed.family)(JSON.parse(JSON.stringify(payload)));
      if (!v.ok) this.invalid.push(`${topic}: ${v.reason}`);
    }
    this.published.push({ topic, family: parsed?.family, payload });
    for (const l of this.listeners.splice(0)) l();
    return 'sent';
  }
  async publishToIoTCore(): Promise<'sent'> {
    return 'sent';
  }
  async subscribe<P>(filter: TopicFilter<P>, handler: MessageHandler<P>): Promise<Subscription> {
    const entry = { filter: filter as TopicFilter<unknown>, handler: handler as MessageHandler<unknown> };
    this.handlers.push(entry);
    return { close: async () => void (this.handlers = this.handlers.filter((h) => h !== entry)) };
  }
  async getConfiguration(): Promise<unknown> {
    return {};
  }
  async subscribeToConfigurationUpdate(): Promise<Subscription> {
    return { close: async () => undefined };
  }
  async updateState(): Promise<void> {}
  async subscribeToComponentUpdates(): Promise<Subscription> {
    return { close: async () => undefined };
  }
  async deferComponentUpdate(): Promise<void> {}
  async close(): Promise<void> {
    this.state = 'closed';
  }

  /** Deliver a command as the nucleus would (validated first). */
  async command(cmd: ControlCommand, topic: string): Promise<void> {
    for (const h of this.handlers) {
      const v = h.filter.validate(cmd);
      if (!v.ok) throw new Error(v.reason);
      await h.handler(v.value, topic);
    }
  }

  of<T>(family: LocalFamily, assetId?: string): T[] {
    return this.published.filter((p) => p.family === family && (assetId === undefined || (p.payload as { assetId?: string }).assetId === assetId)).map((p) => p.payload as T);
  }

  /** Resolves when `cond` holds, re-checked after each publish; rejects after `timeoutMs`. */
  async until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.listeners.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}
