/**
 * A FIFO with a hard capacity (docs/conventions.md "Avoid": unbounded queues). When full, the oldest
 * item is dropped and handed to `onDrop` so the caller counts it; nothing is lost silently.
 */
export class BoundedQueue<T> {
  private items: T[] = [];

  constructor(
    readonly capacity: number,
    private readonly onDrop: (item: T) => void,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer (got ${capacity})`);
  }

  get length(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    this.items.push(item);
    this.trim();
  }

  /** Put an item back at the head (e.g. a send that failed mid-flight). */
  unshift(item: T): void {
    this.items.unshift(item);
    this.trim();
  }

  shift(): T | undefined {
    return this.items.shift();
  }

  /** Remove everything and return it. */
  drain(): T[] {
    const all = this.items;
    this.items = [];
    return all;
  }

  private trim(): void {
    while (this.items.length > this.capacity) {
      const lost = this.items.shift() as T;
      this.onDrop(lost);
    }
  }
}
