/**
 * LocalControl's alarm notifications: the public surface (docs/local-control-outputs.md).
 */
export { createAlarmOutputs, type AlarmOutputs, type AlarmOutputsDeps, type AlarmOutputsStatus, type AckOutcome, type OfferResult } from './outputs';
export {
  checkOutputsOptions,
  OUTPUTS_DEFAULTS,
  MAX_SMS_PARTS,
  type AlarmOutputsOptions,
  type ChannelOptions,
  type EmailChannelOptions,
  type SmsChannelOptions,
  type WebhookChannelOptions,
  type EscalationOptions,
  type SmtpTls,
} from './options';
export { TRANSITION_ROUTES, type TransitionRoute } from './routing';
export { ChannelError, type Notification, type NotificationChannel, type NotificationKind, type SendContext } from './types';
export type { ChannelStatus, ChannelState, DeliveredEvent } from './worker';
export type { OpenSerial, SerialLink } from './modem';
