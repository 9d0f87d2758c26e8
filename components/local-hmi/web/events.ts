/// <reference lib="dom" />
/**
 * Live updates: one EventSource on /api/events for the whole app (the session cookie goes with
 * it), fanned out to whichever page listens. The browser reconnects by itself after a drop; the
 * pages re-read what they show when the stream comes back, since events sent meanwhile are lost.
 */
import type { EventMap } from './types';

type Name = keyof EventMap;
type Listener<K extends Name> = (data: EventMap[K]) => void;

const NAMES: Name[] = ['telemetry', 'alarm', 'device', 'health', 'cloud'];

export class LiveEvents {
  private source: EventSource | undefined;
  private readonly listeners = new Map<Name, Set<Listener<Name>>>();
  private readonly stateListeners = new Set<(connected: boolean) => void>();
  private wasOpen = false;
  /** Events received, by name: the benchmark and the tests read them (window.__hmi). */
  readonly counts: Record<string, number> = {};

  start(): void {
    if (this.source) return;
    const es = new EventSource('/api/events');
    this.source = es;
    es.onopen = () => {
      const reconnect = this.wasOpen;
      this.wasOpen = true;
      for (const fn of this.stateListeners) fn(true);
      if (reconnect) this.emitReconnect();
    };
    es.onerror = () => {
      for (const fn of this.stateListeners) fn(false);
    };
    for (const name of NAMES) {
      es.addEventListener(name, (ev) => {
        let data: unknown;
        try {
          data = JSON.parse((ev as MessageEvent<string>).data);
        } catch {
          return; // a malformed event is dropped; the next one carries the current state again
        }
        this.counts[name] = (this.counts[name] ?? 0) + 1;
        for (const fn of this.listeners.get(name) ?? []) {
          try {
            fn(data as EventMap[typeof name]);
          } catch (err) {
            console.error(`live ${name} handler failed`, err);
          }
        }
      });
    }
  }

  stop(): void {
    this.source?.close();
    this.source = undefined;
    this.wasOpen = false;
  }

  get connected(): boolean {
    return this.source?.readyState === EventSource.OPEN;
  }

  /** Subscribes; returns the unsubscribe function (pages call it when they unmount). */
  on<K extends Name>(name: K, fn: Listener<K>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(fn as Listener<Name>);
    return () => set!.delete(fn as Listener<Name>);
  }

  onState(fn: (connected: boolean) => void): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  private readonly reconnectListeners = new Set<() => void>();

  onReconnect(fn: () => void): () => void {
    this.reconnectListeners.add(fn);
    return () => this.reconnectListeners.delete(fn);
  }

  private emitReconnect(): void {
    for (const fn of this.reconnectListeners) fn();
  }
}
