/**
 * Token buckets for IoT Core's per-connection quotas (docs.aws.amazon.com/general/latest/gr/iot-core.html:
 * 100 publish requests/s and 512 KB/s per connection). `take` may go into debt: an alarm is sent at
 * once (a live alarm never waits behind the backlog, docs/uplink.md) and the debt delays the
 * backlog behind it instead.
 */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(private readonly ratePerS: number, private readonly burst: number, now: number) {
    this.tokens = burst;
    this.at = now;
  }

  private refill(now: number): void {
    if (now > this.at) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.ratePerS) / 1000);
      this.at = now;
    }
  }

  /** Ms until `n` tokens are available (0 = now). */
  waitMs(n: number, now: number): number {
    this.refill(now);
    const need = Math.min(n, this.burst) - this.tokens;
    return need <= 0 ? 0 : Math.ceil((need * 1000) / this.ratePerS);
  }

  take(n: number, now: number): void {
    this.refill(now);
    this.tokens -= n;
  }
}
