/**
 * IPC authentication tokens (SVCUID).
 *
 * The nucleus gives each component one random 16-character upper-case token, handed to its
 * processes as `SVCUID` (and `AWS_CONTAINER_AUTHORIZATION_TOKEN`); the Connect handshake's
 * `authToken` maps back to the component name, which is the identity for every later
 * authorization decision (ipc/AuthenticationHandler.java). Tokens are made anew at every
 * nucleus start, so a token leaked from an old run is worthless.
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export function newToken(length = 16): string {
  const bytes = randomBytes(length);
  let out = '';
  // 36 does not divide 256 evenly; the bias (< 1 %) is irrelevant for an unguessable local token
  // of 82 bits, which is what the nucleus offers too.
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i]! % ALPHABET.length];
  return out;
}

export class TokenRegistry {
  private readonly byToken = new Map<string, string>();
  private readonly byComponent = new Map<string, string>();

  /** The component's token, created on first use. */
  tokenFor(component: string): string {
    let token = this.byComponent.get(component);
    if (!token) {
      token = newToken();
      this.byComponent.set(component, token);
      this.byToken.set(token, component);
    }
    return token;
  }

  componentFor(token: string): string | undefined {
    return this.byToken.get(token);
  }

  revoke(component: string): void {
    const token = this.byComponent.get(component);
    if (token) this.byToken.delete(token);
    this.byComponent.delete(component);
  }
}
