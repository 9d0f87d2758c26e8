import { ConfigConflictError, ConfigInvalidError, ConfigStore } from '../../scripts/runtime/config-store';

function clock(start = 1_700_000_000_000): { now: () => number; tick: (ms?: number) => number } {
  let t = start;
  return { now: () => t, tick: (ms = 1000) => (t += ms) };
}

function watch(store: ConfigStore, component: string, keyPath: string[]): string[][] {
  const events: string[][] = [];
  store.subscribe(component, keyPath, (p) => events.push(p));
  return events;
}

describe('ConfigStore reads', () => {
  test('read, document and has; results are deep copies', () => {
    const s = new ConfigStore(clock().now);
    expect(s.has('A')).toBe(false);
    expect(s.read('A', [])).toEqual({ found: false });
    expect(s.document('A')).toEqual({});
    s.applyDeployment('A', { defaults: { poll: { intervalMs: 1000, ids: [1, 2] }, name: 'x' } });
    expect(s.has('A')).toBe(true);
    expect(s.read('A', [])).toEqual({ found: true, value: { poll: { intervalMs: 1000, ids: [1, 2] }, name: 'x' } });
    expect(s.read('A', ['poll'])).toEqual({ found: true, value: { intervalMs: 1000, ids: [1, 2] } });
    expect(s.read('A', ['poll', 'intervalMs'])).toEqual({ found: true, value: 1000 });
    expect(s.read('A', ['poll', 'missing'])).toEqual({ found: false });
    expect(s.read('A', ['name', 'below'])).toEqual({ found: false });
    const doc = s.document('A') as { poll: { ids: number[] } };
    doc.poll.ids.push(3);
    const r = s.read('A', ['poll', 'ids']);
    expect(r.found && r.value).toEqual([1, 2]);
  });

  test('keys are case-insensitive like the nucleus, and keep their first spelling', () => {
    const s = new ConfigStore(clock().now);
    s.applyDeployment('A', { defaults: { pollIntervalMs: 5 } });
    expect(s.read('A', ['POLLINTERVALMS'])).toEqual({ found: true, value: 5 });
    s.update('A', [], { PollIntervalMs: 6 }, 2e12);
    expect(s.document('A')).toEqual({ pollIntervalMs: 6 });
  });
});

describe('UpdateConfiguration', () => {
  test('merges into the container at keyPath, creating it if missing', () => {
    const c = clock();
    const s = new ConfigStore(c.now);
    s.applyDeployment('A', { defaults: { a: { x: 1, y: 2 }, keep: true } });
    s.update('A', ['a'], { y: 20, z: { deep: 'v' } }, c.tick());
    s.update('A', ['new', 'branch'], { k: [1] }, c.tick());
    expect(s.document('A')).toEqual({ a: { x: 1, y: 20, z: { deep: 'v' } }, keep: true, new: { branch: { k: [1] } } });
  });

  test('an older timestamp is a conflict and changes nothing; equal or newer wins', () => {
    const c = clock();
    const s = new ConfigStore(c.now);
    const t1 = c.tick();
    s.update('A', [], { v: 1, other: 'o' }, t1);
    const events = watch(s, 'A', []);
    expect(() => s.update('A', [], { v: 2, fresh: 1 }, t1 - 1)).toThrow(ConfigConflictError);
    expect(s.document('A')).toEqual({ v: 1, other: 'o' });
    expect(events).toEqual([]);
    s.update('A', [], { v: 3 }, t1); // equal timestamp wins
    expect(s.read('A', ['v'])).toEqual({ found: true, value: 3 });
    s.update('A', [], { v: 4 }, t1 + 5);
    expect(s.read('A', ['v'])).toEqual({ found: true, value: 4 });
  });

  test('a newer sibling below the container makes an older update conflict (container modtime = newest below)', () => {
    const s = new ConfigStore(clock().now);
    s.update('A', ['c'], { a: 1 }, 100);
    s.update('A', ['c'], { b: 1 }, 200);
    expect(() => s.update('A', ['c'], { a: 2 }, 150)).toThrow(ConfigConflictError);
    // A different container is not affected by it.
    s.update('A', ['d'], { a: 2 }, 150);
    expect(s.read('A', ['d', 'a'])).toEqual({ found: true, value: 2 });
  });

  test('a keyPath naming a value, or a change between value and container, is invalid', () => {
    const s = new ConfigStore(clock().now);
    s.update('A', [], { leaf: 1, box: { x: 1 } }, 10);
    expect(() => s.update('A', ['leaf'], { x: 1 }, 20)).toThrow(ConfigInvalidError);
    expect(() => s.update('A', ['leaf', 'deeper'], { x: 1 }, 20)).toThrow(ConfigInvalidError);
    expect(() => s.update('A', [], { leaf: { x: 1 } }, 20)).toThrow(ConfigInvalidError);
    expect(() => s.update('A', [], { box: 5 }, 20)).toThrow(ConfigInvalidError);
    expect(() => s.update('A', [], { bad: Number.NaN }, 20)).toThrow(ConfigInvalidError);
    expect(s.document('A')).toEqual({ leaf: 1, box: { x: 1 } });
  });
});

describe('change events', () => {
  test('one event per changed leaf, none for unchanged values, none initially', () => {
    const c = clock();
    const s = new ConfigStore(c.now);
    s.update('A', [], { a: 1, b: { c: 2, d: 3 } }, c.tick());
    const all = watch(s, 'A', []);
    const underB = watch(s, 'A', ['b']);
    const atC = watch(s, 'A', ['b', 'c']);
    expect(all).toEqual([]);
    s.update('A', [], { a: 1, b: { c: 20, d: 3, e: { f: 1 } } }, c.tick());
    expect(all).toEqual([['b', 'c'], ['b', 'e', 'f']]);
    expect(underB).toEqual([['b', 'c'], ['b', 'e', 'f']]);
    expect(atC).toEqual([['b', 'c']]);
    s.update('A', [], { a: 1 }, c.tick()); // unchanged
    expect(all).toHaveLength(2);
  });

  test('watching another component, unsubscribing, and a throwing listener', () => {
    const c = clock();
    const errors: unknown[] = [];
    const s = new ConfigStore(c.now, (err) => errors.push(err));
    const events: string[][] = [];
    const stop = s.subscribe('Other', ['k'], (p) => events.push(p));
    s.subscribe('Other', [], () => {
      throw new Error('listener bug');
    });
    s.update('Other', [], { k: 1 }, c.tick());
    expect(events).toEqual([['k']]);
    expect(errors).toHaveLength(1);
    stop();
    s.update('Other', [], { k: 2 }, c.tick());
    expect(events).toEqual([['k']]);
  });

  test('removals emit one event for the removed node, and watchers below it hear about their own path', () => {
    const c = clock();
    const s = new ConfigStore(c.now);
    s.applyDeployment('A', { defaults: {}, merge: { zone: { a: { x: 1 }, b: 2 }, keep: 1 } });
    const all = watch(s, 'A', []);
    const deep = watch(s, 'A', ['zone', 'a', 'x']);
    c.tick();
    s.applyDeployment('A', { defaults: {}, reset: ['/zone'] });
    expect(all).toEqual([['zone']]);
    expect(deep).toEqual([['zone', 'a', 'x']]);
    expect(s.document('A')).toEqual({ keep: 1 });
  });
});

describe('deployments (KernelConfigResolver order)', () => {
  test('defaults fill missing keys; existing values win over a changed default unless reset', () => {
    const c = clock();
    const s = new ConfigStore(c.now);
    s.applyDeployment('A', { defaults: { rate: 1, mode: 'a' } });
    s.update('A', [], { rate: 5 }, c.tick());
    c.tick();
    s.applyDeployment('A', { defaults: { rate: 2, mode: 'b', added: true } });
    // The component's own value and the earlier default both stay; only the new key appears.
    expect(s.document('A')).toEqual({ rate: 5, mode: 'a', added: true });
    c.tick();
    s.applyDeployment('A', { defaults: { rate: 2, mode: 'b', added: true }, reset: ['/rate', '/mode'] });
    expect(s.document('A')).toEqual({ rate: 2, mode: 'b', added: true });
  });

  test("MERGE replaces scalars and lists, merges objects, allows null; '' resets everything", () => {
    const c = clock();
    const s = new ConfigStore(c.now);
    s.applyDeployment('A', { defaults: { list: [1, 2, 3], obj: { a: 1, b: 2 }, s: 'x' } });
    c.tick();
    s.applyDeployment('A', { defaults: { list: [1, 2, 3], obj: { a: 1, b: 2 }, s: 'x' }, merge: { list: [9], obj: { b: 20, c: 30 }, s: null } });
    expect(s.document('A')).toEqual({ list: [9], obj: { a: 1, b: 20, c: 30 }, s: null });
    c.tick();
    const events = watch(s, 'A', []);
    s.applyDeployment('A', { defaults: { list: [1, 2, 3], obj: { a: 1, b: 2 }, s: 'x' }, reset: [''] });
    expect(s.document('A')).toEqual({ list: [1, 2, 3], obj: { a: 1, b: 2 }, s: 'x' });
    expect(events.sort()).toEqual([['list'], ['obj', 'b'], ['obj', 'c'], ['s']].sort());
  });

  test('MERGE can change a value into a container', () => {
    const c = clock();
    const s = new ConfigStore(c.now);
    s.applyDeployment('A', { defaults: { x: 1 } });
    c.tick();
    s.applyDeployment('A', { defaults: { x: 1 }, merge: { x: { y: 2 } } });
    expect(s.document('A')).toEqual({ x: { y: 2 } });
  });

  test('pointers to array elements are skipped; a malformed pointer is refused before any change', () => {
    const c = clock();
    const s = new ConfigStore(c.now);
    s.applyDeployment('A', { defaults: {}, merge: { m: { '1': 'one', 'a/b': 'slash' } } });
    c.tick();
    s.applyDeployment('A', { defaults: {}, reset: ['/m/1', '/m/a~1b'] });
    expect(s.document('A')).toEqual({ m: { '1': 'one' } });
    expect(() => s.applyDeployment('A', { defaults: { z: 1 }, reset: ['m'] })).toThrow(ConfigInvalidError);
    expect(s.document('A')).toEqual({ m: { '1': 'one' } });
  });

  test('a deployment MERGE stamps now: a later component update with an older timestamp conflicts', () => {
    const c = clock();
    const s = new ConfigStore(c.now);
    const before = c.now();
    c.tick();
    s.applyDeployment('A', { defaults: {}, merge: { v: 1 } });
    expect(() => s.update('A', [], { v: 2 }, before)).toThrow(ConfigConflictError);
  });
});

describe('persistence, snapshot and restore', () => {
  test('toJSON/fromJSON round-trips values and modtimes', () => {
    const c = clock();
    const s = new ConfigStore(c.now);
    s.update('A', ['x'], { Mixed: 'Case', n: [1, { a: 2 }] }, 500);
    s.applyDeployment('B', { defaults: { d: 1 } });
    const copy = ConfigStore.fromJSON(JSON.parse(JSON.stringify(s.toJSON())), c.now);
    expect(copy.document('A')).toEqual(s.document('A'));
    expect(copy.document('B')).toEqual({ d: 1 });
    expect(() => copy.update('A', ['x'], { n: 0 }, 499)).toThrow(ConfigConflictError);
    expect(() => ConfigStore.fromJSON({ version: 2 })).toThrow(ConfigInvalidError);
    expect(() => ConfigStore.fromJSON({ version: 1, components: { A: { n: 'A', t: 1, v: { obj: 1 } } } })).toThrow(ConfigInvalidError);
  });

  test('restore puts the snapshot back and emits events for what differs', () => {
    const c = clock();
    const s = new ConfigStore(c.now);
    s.update('A', [], { same: 1, changed: 'old', removedLater: true }, 100);
    const snap = s.snapshot('A');
    s.update('A', [], { changed: 'new', added: 1 }, 200);
    s.applyDeployment('A', { defaults: {}, reset: ['/removedLater'] });
    const events = watch(s, 'A', []);
    s.restore('A', snap);
    expect(s.document('A')).toEqual({ same: 1, changed: 'old', removedLater: true });
    expect(events.sort()).toEqual([['added'], ['changed'], ['removedLater']].sort());
    // Modtimes are restored too: a timestamp between the two updates is accepted again.
    s.update('A', [], { changed: 'mid' }, 150);
    expect(s.read('A', ['changed'])).toEqual({ found: true, value: 'mid' });
  });

  test('restoring a null snapshot (component absent before) removes it', () => {
    const s = new ConfigStore(clock().now);
    const snap = s.snapshot('A');
    expect(snap).toBeNull();
    s.applyDeployment('A', { defaults: { k: 1 } });
    const events = watch(s, 'A', []);
    s.restore('A', snap);
    expect(s.has('A')).toBe(false);
    expect(events).toEqual([['k']]);
  });

  test('remove forgets the component and reports its top-level keys', () => {
    const s = new ConfigStore(clock().now);
    s.applyDeployment('A', { defaults: { a: { b: 1 }, c: 2 } });
    const events = watch(s, 'A', []);
    s.remove('A');
    expect(s.has('A')).toBe(false);
    expect(events).toEqual([['a'], ['c']]);
  });
});
