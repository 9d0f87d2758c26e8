/**
 * Local publish/subscribe routing for PublishToTopic / SubscribeToTopic.
 *
 * Follows the nucleus's `builtin/services/pubsub/SubscriptionTrie.java` and
 * `PubSubIPCEventStreamAgent.java` (Greengrass Developer Guide, "Publish/subscribe local messages"):
 * - filters are split on '/', '+' matches exactly one level (an empty level included), '#' the rest;
 * - Java quirk kept on purpose: 'a/#' does NOT match 'a' (the trie only looks at a '#' child while
 *   there is a further topic level to consume);
 * - a topic published with '+', '#' or '*' is refused; an empty filter is refused;
 * - RECEIVE_MESSAGES_FROM_OTHERS skips the publisher's own subscriptions, and is the default when the
 *   filter has a '+' level or a trailing '#' level (`SubscriptionTrie.isWildcard`).
 *
 * Matching walks a trie keyed by level, so a publish costs O(levels x matching branches), not a scan of
 * every filter: the runtime's benchmark pushes hundreds of thousands of messages per second through it.
 *
 * Deviation: Java's `String.split` drops trailing empty levels ('a/b/' is routed like 'a/b'); we keep
 * them, as MQTT does, because such topics are bugs on either side.
 */

export type ReceiveMode = 'RECEIVE_ALL_MESSAGES' | 'RECEIVE_MESSAGES_FROM_OTHERS';

/** A topic or filter the nucleus would refuse; the IPC layer maps it to InvalidArgumentsError. */
export class TopicError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TopicError';
  }
}

const SEP = '/';
const PLUS = '+';
const HASH = '#';

export function validatePublishTopic(topic: string): void {
  if (typeof topic !== 'string' || topic.length === 0) throw new TopicError('Topic must not be empty');
  if (topic.includes(PLUS) || topic.includes(HASH) || topic.includes('*')) {
    throw new TopicError(`Publish topic must not contain wildcards ('+', '#', '*'): ${topic}`);
  }
}

export function validateFilter(filter: string): void {
  if (typeof filter !== 'string' || filter.length === 0) throw new TopicError('Subscription topic must not be empty');
  const levels = filter.split(SEP);
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i];
    if (level.includes(HASH) && (level !== HASH || i !== levels.length - 1)) {
      throw new TopicError(`'#' must be the whole last level of a filter: ${filter}`);
    }
    if (level.includes(PLUS) && level !== PLUS) {
      throw new TopicError(`'+' must be a whole level of a filter: ${filter}`);
    }
  }
}

export function defaultReceiveMode(filter: string): ReceiveMode {
  const levels = filter.split(SEP);
  for (let i = 0; i < levels.length; i++) {
    if (levels[i] === PLUS) return 'RECEIVE_MESSAGES_FROM_OTHERS';
    if (levels[i] === HASH && i === levels.length - 1) return 'RECEIVE_MESSAGES_FROM_OTHERS';
  }
  return 'RECEIVE_ALL_MESSAGES';
}

/** Does `filter` match the concrete `topic`, with the nucleus's semantics (see the file comment)? */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split(SEP);
  const t = topic.split(SEP);
  for (let i = 0; i < f.length; i++) {
    if (f[i] === HASH) return i < t.length; // '#' needs at least one more level: 'a/#' !~ 'a'
    if (i >= t.length) return false;
    if (f[i] !== PLUS && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

export interface Subscriber<M> {
  component: string;
  receiveMode?: ReceiveMode;
  deliver(topic: string, message: M): void;
}

interface Entry<M> {
  sub: Subscriber<M>;
  /** Resolved at subscribe time: the explicit mode, else the filter's default. */
  fromOthers: boolean;
}

class TrieNode<M> {
  readonly children = new Map<string, TrieNode<M>>();
  readonly entries: Entry<M>[] = [];
}

export interface PubSubOptions {
  /** Called when a subscriber's deliver() throws; the other subscribers still get the message. */
  onDeliveryError?: (err: unknown, component: string, topic: string) => void;
}

export class PubSub<M> {
  private readonly root = new TrieNode<M>();
  private count = 0;
  /** Components whose deliveries are dropped (fault injection: `withholdFrom`). */
  private readonly withheld = new Set<string>();
  /** Messages dropped by `withholdFrom`, per component. */
  readonly withheldCount = new Map<string, number>();
  private readonly onDeliveryError: (err: unknown, component: string, topic: string) => void;

  constructor(opts: PubSubOptions = {}) {
    this.onDeliveryError =
      opts.onDeliveryError ??
      ((err, component, topic) => {
        // No logger is injected here: surface the failure rather than swallow it.
        process.emitWarning(`pubsub delivery to ${component} on ${topic} failed: ${String(err)}`);
      });
  }

  subscribe(filter: string, sub: Subscriber<M>): () => void {
    validateFilter(filter);
    const mode = sub.receiveMode ?? defaultReceiveMode(filter);
    const entry: Entry<M> = { sub, fromOthers: mode === 'RECEIVE_MESSAGES_FROM_OTHERS' };
    const levels = filter.split(SEP);
    let node = this.root;
    for (const level of levels) {
      let next = node.children.get(level);
      if (!next) {
        next = new TrieNode<M>();
        node.children.set(level, next);
      }
      node = next;
    }
    node.entries.push(entry);
    this.count++;
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.remove(levels, entry);
    };
  }

  /**
   * Fault injection for tests and drills (not an IPC operation): while on, nothing published reaches
   * `component`'s subscriptions; the messages are dropped as a lost or overloaded IPC link would.
   */
  withholdFrom(component: string, on: boolean): void {
    if (on) this.withheld.add(component);
    else this.withheld.delete(component);
  }

  /** Routes one message; returns how many subscribers it was delivered to. */
  publish(topic: string, message: M, publisherComponent: string): number {
    validatePublishTopic(topic);
    const matched: Entry<M>[] = [];
    collect(this.root, topic.split(SEP), 0, matched);
    if (matched.length === 0) return 0;
    // The nucleus gathers matches in a Set, so a subscriber whose filters overlap gets one copy.
    const seen = matched.length > 1 ? new Set<Subscriber<M>>() : undefined;
    let delivered = 0;
    for (const e of matched) {
      if (e.fromOthers && e.sub.component === publisherComponent) continue;
      if (this.withheld.size > 0 && this.withheld.has(e.sub.component)) {
        this.withheldCount.set(e.sub.component, (this.withheldCount.get(e.sub.component) ?? 0) + 1);
        continue;
      }
      if (seen) {
        if (seen.has(e.sub)) continue;
        seen.add(e.sub);
      }
      try {
        e.sub.deliver(topic, message);
        delivered++;
      } catch (err) {
        this.onDeliveryError(err, e.sub.component, topic);
      }
    }
    return delivered;
  }

  subscriptionCount(): number {
    return this.count;
  }

  private remove(levels: string[], entry: Entry<M>): void {
    // Walk down remembering the path so empty branches can be pruned on the way back up.
    const path: TrieNode<M>[] = [this.root];
    let node = this.root;
    for (const level of levels) {
      const next = node.children.get(level);
      if (!next) return;
      path.push(next);
      node = next;
    }
    const idx = node.entries.indexOf(entry);
    if (idx < 0) return;
    node.entries.splice(idx, 1);
    this.count--;
    for (let i = levels.length; i > 0; i--) {
      const n = path[i];
      if (n.entries.length > 0 || n.children.size > 0) break;
      path[i - 1].children.delete(levels[i - 1]);
    }
  }
}

function collect<M>(node: TrieNode<M>, levels: string[], i: number, out: Entry<M>[]): void {
  if (i === levels.length) {
    for (const e of node.entries) out.push(e);
    return;
  }
  const { children } = node;
  if (children.size === 0) return;
  const exact = children.get(levels[i]);
  if (exact) collect(exact, levels, i + 1, out);
  const plus = children.get(PLUS);
  if (plus) collect(plus, levels, i + 1, out);
  const hash = children.get(HASH);
  if (hash) for (const e of hash.entries) out.push(e);
}
