import {
  PubSub,
  Subscriber,
  TopicError,
  defaultReceiveMode,
  topicMatches,
  validateFilter,
  validatePublishTopic,
} from '../../scripts/runtime/pubsub';

interface Got {
  topic: string;
  msg: string;
}

function recorder(component: string, receiveMode?: Subscriber<string>['receiveMode']): Subscriber<string> & { got: Got[] } {
  const got: Got[] = [];
  return { component, receiveMode, got, deliver: (topic, msg) => got.push({ topic, msg }) };
}

describe('topicMatches (SubscriptionTrie semantics)', () => {
  test.each([
    ['a/b', 'a/b', true],
    ['a/b', 'a/c', false],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/+', 'a/', true], // '+' matches an empty level
    ['+/b', 'x/b', true],
    ['a/#', 'a/b', true],
    ['a/#', 'a/b/c/d', true],
    ['a/#', 'a', false], // Java quirk of the nucleus's SubscriptionTrie (docs/local-runtime.md)
    ['#', 'anything/at/all', true],
    ['a/+/c/#', 'a/x/c/d', true],
    ['a/+/c/#', 'a/x/c', false],
    ['a', 'a/b', false],
  ])('%s vs %s -> %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });
});

describe('validation', () => {
  test('publish topics refuse wildcards and empty', () => {
    for (const bad of ['', 'a/+', 'a/#', 'a/*', '*']) {
      expect(() => validatePublishTopic(bad)).toThrow(TopicError);
    }
    expect(() => validatePublishTopic('site/1/scada/inv1/telemetry')).not.toThrow();
  });

  test('filters: # only as the whole last level, + only as a whole level', () => {
    for (const bad of ['', 'a/#/b', 'a/b#', 'a+/b', 'a/+b', '##']) {
      expect(() => validateFilter(bad)).toThrow(TopicError);
    }
    for (const good of ['a', 'a/+', '+/+', '#', 'a/+/b/#', 'a//b']) {
      expect(() => validateFilter(good)).not.toThrow();
    }
  });

  test('default receive mode', () => {
    expect(defaultReceiveMode('a/b')).toBe('RECEIVE_ALL_MESSAGES');
    expect(defaultReceiveMode('a/+/b')).toBe('RECEIVE_MESSAGES_FROM_OTHERS');
    expect(defaultReceiveMode('a/#')).toBe('RECEIVE_MESSAGES_FROM_OTHERS');
    expect(defaultReceiveMode('#')).toBe('RECEIVE_MESSAGES_FROM_OTHERS');
  });
});

describe('PubSub', () => {
  test('routes to exact, + and # subscribers and returns the delivery count', () => {
    const ps = new PubSub<string>();
    const exact = recorder('A');
    const plus = recorder('B');
    const hash = recorder('C');
    const other = recorder('D');
    ps.subscribe('site/1/telemetry', exact);
    ps.subscribe('site/+/telemetry', plus);
    ps.subscribe('site/#', hash);
    ps.subscribe('site/2/alarms', other);
    expect(ps.publish('site/1/telemetry', 'm1', 'P')).toBe(3);
    expect(exact.got).toEqual([{ topic: 'site/1/telemetry', msg: 'm1' }]);
    expect(plus.got).toEqual([{ topic: 'site/1/telemetry', msg: 'm1' }]);
    expect(hash.got).toEqual([{ topic: 'site/1/telemetry', msg: 'm1' }]);
    expect(other.got).toEqual([]);
    // A publish with no subscribers still succeeds.
    expect(ps.publish('nobody/listens', 'x', 'P')).toBe(0);
  });

  test("'a/#' does not receive 'a'", () => {
    const ps = new PubSub<string>();
    const r = recorder('A');
    ps.subscribe('a/#', r);
    expect(ps.publish('a', 'x', 'P')).toBe(0);
    expect(ps.publish('a/b', 'y', 'P')).toBe(1);
    expect(r.got.map((g) => g.msg)).toEqual(['y']);
  });

  test('receive modes: FROM_OTHERS skips own publishes, ALL keeps them, defaults depend on the filter', () => {
    const ps = new PubSub<string>();
    const wildDefault = recorder('A'); // '+' -> FROM_OTHERS by default
    const exactDefault = recorder('A'); // no wildcard -> ALL by default
    const exactFromOthers = recorder('A', 'RECEIVE_MESSAGES_FROM_OTHERS');
    const wildAll = recorder('A', 'RECEIVE_ALL_MESSAGES');
    ps.subscribe('t/+', wildDefault);
    ps.subscribe('t/x', exactDefault);
    ps.subscribe('t/x', exactFromOthers);
    ps.subscribe('t/#', wildAll);
    expect(ps.publish('t/x', 'own', 'A')).toBe(2);
    expect(wildDefault.got).toEqual([]);
    expect(exactFromOthers.got).toEqual([]);
    expect(exactDefault.got.map((g) => g.msg)).toEqual(['own']);
    expect(wildAll.got.map((g) => g.msg)).toEqual(['own']);
    expect(ps.publish('t/x', 'theirs', 'B')).toBe(4);
    expect(wildDefault.got.map((g) => g.msg)).toEqual(['theirs']);
  });

  test('one subscriber with overlapping filters gets one copy', () => {
    const ps = new PubSub<string>();
    const r = recorder('A');
    ps.subscribe('a/+', r);
    ps.subscribe('a/b', r);
    expect(ps.publish('a/b', 'x', 'P')).toBe(1);
    expect(r.got).toHaveLength(1);
  });

  test('unsubscribe stops delivery, prunes, is idempotent; count tracks subscriptions', () => {
    const ps = new PubSub<string>();
    const r1 = recorder('A');
    const r2 = recorder('B');
    const u1 = ps.subscribe('a/b/c', r1);
    const u2 = ps.subscribe('a/b/c', r2);
    expect(ps.subscriptionCount()).toBe(2);
    u1();
    u1();
    expect(ps.subscriptionCount()).toBe(1);
    expect(ps.publish('a/b/c', 'x', 'P')).toBe(1);
    expect(r1.got).toEqual([]);
    u2();
    expect(ps.subscriptionCount()).toBe(0);
    expect(ps.publish('a/b/c', 'y', 'P')).toBe(0);
    // Resubscribing after full pruning works.
    ps.subscribe('a/b/c', r1);
    expect(ps.publish('a/b/c', 'z', 'P')).toBe(1);
  });

  test('order is preserved per subscriber', () => {
    const ps = new PubSub<number>();
    const got: number[] = [];
    ps.subscribe('seq/#', { component: 'A', receiveMode: 'RECEIVE_ALL_MESSAGES', deliver: (_t, m) => got.push(m) });
    for (let i = 0; i < 1000; i++) ps.publish(`seq/${i % 7}`, i, 'P');
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  test('a throwing subscriber does not stop the others and is reported', () => {
    const errors: string[] = [];
    const ps = new PubSub<string>({ onDeliveryError: (_e, component) => errors.push(component) });
    const good = recorder('G');
    ps.subscribe('x', { component: 'BAD', deliver: () => { throw new Error('boom'); } });
    ps.subscribe('x', good);
    expect(ps.publish('x', 'm', 'P')).toBe(1);
    expect(good.got).toHaveLength(1);
    expect(errors).toEqual(['BAD']);
  });

  test('invalid topics and filters throw TopicError', () => {
    const ps = new PubSub<string>();
    expect(() => ps.subscribe('', recorder('A'))).toThrow(TopicError);
    expect(() => ps.subscribe('a/#/b', recorder('A'))).toThrow(TopicError);
    expect(() => ps.publish('a/+', 'm', 'P')).toThrow(TopicError);
  });

  test('matching uses the trie: many unrelated filters stay cheap', () => {
    const ps = new PubSub<number>();
    let hits = 0;
    for (let i = 0; i < 20000; i++) {
      ps.subscribe(`site/${i}/scada/+/telemetry`, { component: `C${i}`, deliver: () => { hits++; } });
    }
    const start = process.hrtime.bigint();
    for (let i = 0; i < 50000; i++) ps.publish(`site/${i % 20000}/scada/inv1/telemetry`, i, 'P');
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    expect(hits).toBe(50000);
    // A linear scan would be 20000 x 50000 = 1e9 filter checks; the trie does ~5 lookups per publish.
    expect(ms).toBeLessThan(5000);
  });
});

describe('fault injection', () => {
  test('withholdFrom drops every delivery to one component, counted, until turned off', () => {
    const ps = new PubSub<string>();
    const a = recorder('A');
    const b = recorder('B');
    ps.subscribe('x/+', a);
    ps.subscribe('x/+', b);
    ps.withholdFrom('A', true);
    expect(ps.publish('x/1', 'm1', 'P')).toBe(1);
    ps.withholdFrom('A', false);
    ps.publish('x/2', 'm2', 'P');
    expect(a.got.map((g) => g.msg)).toEqual(['m2']);
    expect(b.got.map((g) => g.msg)).toEqual(['m1', 'm2']);
    expect(ps.withheldCount.get('A')).toBe(1);
  });
});
