/**
 * Event streams held per component, for the operations whose subscribers the nucleus addresses
 * as components (component updates, configuration validation): a component counts as subscribed
 * while it has at least one open stream.
 */
import type { IpcEventStream } from './ipc/types';

export class ComponentStreams {
  private readonly byComponent = new Map<string, Set<IpcEventStream>>();

  /** Adds a stream; the returned function removes it and calls `onGone` when it was the component's last. */
  add(component: string, stream: IpcEventStream, onGone: (component: string) => void): () => void {
    let set = this.byComponent.get(component);
    if (!set) this.byComponent.set(component, (set = new Set()));
    set.add(stream);
    return () => {
      if (!set!.delete(stream) || set!.size > 0) return;
      this.byComponent.delete(component);
      onGone(component);
    };
  }

  has(component: string): boolean {
    return this.byComponent.has(component);
  }

  components(): string[] {
    return [...this.byComponent.keys()];
  }

  get size(): number {
    return this.byComponent.size;
  }

  /** Sends to every stream of the component, or of every component when none is named. */
  send(eventShape: string, event: object, component?: string): void {
    const sets = component === undefined ? [...this.byComponent.values()] : [this.byComponent.get(component) ?? new Set()];
    for (const set of sets) for (const s of set) s.send(eventShape, event);
  }
}
