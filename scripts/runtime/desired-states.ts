/**
 * Where a component is asked to go: the nucleus keeps a list of desired states per component
 * (lifecyclemanager/Lifecycle.java `desiredStateList`) and each state handler moves towards its
 * head. Requests rewrite the list:
 *
 *   start     -> [..., RUNNING]           (a trailing FINISHED becomes RUNNING)
 *   restart   -> [INSTALLED, RUNNING]     (or keeps a pending NEW: [..., NEW, RUNNING])
 *   reinstall -> [NEW, RUNNING]
 *   stop      -> [FINISHED]               (or keeps a pending NEW: [..., NEW, FINISHED])
 */
export type Desired = 'NEW' | 'INSTALLED' | 'RUNNING' | 'FINISHED';

export class DesiredStates {
  private list: Desired[] = [];

  get head(): Desired | undefined {
    return this.list[0];
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  start(): void {
    const last = this.list[this.list.length - 1];
    if (this.list.length === 0 || (this.list.length === 1 && last === 'FINISHED')) this.list = ['RUNNING'];
    else if (last === 'FINISHED') this.list[this.list.length - 1] = 'RUNNING';
    else if (last !== 'RUNNING') this.list.push('RUNNING');
  }

  restart(): void {
    const i = this.list.indexOf('NEW');
    this.list = i < 0 ? ['INSTALLED', 'RUNNING'] : [...this.list.slice(0, i + 1), 'RUNNING'];
  }

  reinstall(): void {
    this.list = ['NEW', 'RUNNING'];
  }

  /** Stop; `final` drops a pending reinstall too (removal, shutdown of the runtime). */
  stop(final = false): void {
    const i = this.list.indexOf('NEW');
    this.list = i < 0 || final ? ['FINISHED'] : [...this.list.slice(0, i + 1), 'FINISHED'];
  }

  /** Remove `d` from the front as long as it is there (the component has reached it). */
  dropLeading(d: Desired): void {
    while (this.list[0] === d) this.list.shift();
  }

  /** The head, removed if it is `d`. */
  takeIf(d: Desired): Desired | undefined {
    const head = this.list[0];
    if (head === d) this.list.shift();
    return head;
  }
}
