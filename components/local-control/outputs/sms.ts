/**
 * SMS through the site's GSM/LTE modem (modem.ts): one notification at a time, to every number in
 * turn, each part of the text as its own SMS (format.ts `splitSms`).
 *
 * Progress is saved in the queue after every part accepted by the modem (+CMGS), so a retry after
 * a failure (modem timeout, no network, port unplugged) sends only what is missing. A part the
 * modem did not confirm is sent again: a +CMGS lost to a timeout can mean a doubled SMS, never a
 * missing one.
 *
 * +CMS ERROR numbers below 128 are the network's RP-cause values (3GPP TS 24.011 Annex E-2); the
 * ones that say "this number cannot get an SMS" (unassigned number, barred, rejected, unknown or
 * unidentified subscriber, facility rejected or not subscribed, invalid mandatory information)
 * refuse that number for good: counted, logged, not retried. Every other error (network out of
 * order, congestion, no service, SIM busy, 300-series modem errors, ERROR, timeouts) retries the
 * notification with backoff.
 */
import { OUTPUTS_DEFAULTS, type SmsChannelOptions } from './options';
import { smsText, splitSms } from './format';
import { maskNumber, ModemError, type AtModem } from './modem';
import { ChannelError, messageOf, type Notification, type NotificationChannel, type SendContext } from './types';

/** RP-cause values (TS 24.011 Annex E-2) that refuse the destination number itself. */
export const PERMANENT_CMS = new Set([1, 8, 10, 21, 28, 29, 30, 50, 96]);

type Progress = Record<string, number | 'refused'>;

function parseProgress(s: string | null): Progress {
  if (!s) return {};
  try {
    const v = JSON.parse(s) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Progress) : {};
  } catch {
    return {};
  }
}

export class SmsChannel implements NotificationChannel {
  readonly type = 'sms';
  readonly name: string;
  readonly maxBatch = 1;
  readonly batchIntervalMs = 0;
  private readonly maxParts: number;
  private closed = false;

  constructor(
    private readonly o: SmsChannelOptions,
    private readonly modem: AtModem,
  ) {
    this.name = o.name;
    modem.users += 1;
    this.maxParts = o.maxParts ?? OUTPUTS_DEFAULTS.sms.maxParts;
  }

  async send(batch: readonly Notification[], ctx: SendContext): Promise<void> {
    for (const n of batch) await this.sendOne(n, ctx);
  }

  private async sendOne(n: Notification, ctx: SendContext): Promise<void> {
    const parts = splitSms(smsText(n, { siteId: ctx.siteId, siteName: ctx.siteName, escalateAfterMs: ctx.escalateAfterMs }), this.maxParts);
    const progress = parseProgress(n.progress);
    for (const number of this.o.numbers) {
      const done = progress[number] ?? 0;
      if (done === 'refused') continue;
      for (let i = done; i < parts.length; i++) {
        if (this.closed) throw new ChannelError('CLOSED', 'channel closed');
        try {
          await this.modem.sendSms(number, parts[i]!);
        } catch (err) {
          if (err instanceof ModemError && err.kind === 'cms' && err.errorNumber !== undefined && PERMANENT_CMS.has(err.errorNumber)) {
            progress[number] = 'refused';
            ctx.saveProgress(n.id, JSON.stringify(progress));
            ctx.refusedPart('sms_number_refused', { channel: this.name, number: maskNumber(number), code: err.code });
            break;
          }
          if (err instanceof ModemError) throw new ChannelError(err.code, err.message, { cause: err });
          throw new ChannelError('MODEM_FAILED', messageOf(err), { cause: err });
        }
        progress[number] = i + 1;
        ctx.saveProgress(n.id, JSON.stringify(progress));
      }
    }
    if (this.o.numbers.every((num) => progress[num] === 'refused')) {
      throw new ChannelError('SMS_ALL_NUMBERS_REFUSED', 'the network refused every number of this channel', { refused: true });
    }
  }

  /** The shared modem closes with the last channel using it (which also ends a send in flight). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.modem.users -= 1;
    if (this.modem.users <= 0) await this.modem.close();
  }
}
