/// <reference lib="dom" />
/** What every page gets, and what it gives back: a mount that fills its root, and a cleanup. */
import type { LiveEvents } from './events';
import type { Session } from './types';

export interface PageContext {
  session: Session;
  live: LiveEvents;
  /** operator or admin: may acknowledge, shelve and control. A viewer sees no such buttons. */
  canAct: boolean;
}

export interface Page {
  id: string;
  title: string;
  /** Fills `root`; returns the cleanup (unsubscribe, stop timers). */
  mount(root: HTMLElement, ctx: PageContext): () => void;
}

/** Runs `fn` at most once per `ms`, trailing: many events in a burst become one re-read. */
export function throttle(fn: () => void, ms: number): { (): void; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let last = 0;
  const run = (): void => {
    timer = undefined;
    last = Date.now();
    fn();
  };
  const t = (): void => {
    if (timer) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(run, wait);
  };
  t.cancel = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  return t;
}
