/**
 * Test peer: aiosmtpd (Debian python3-aiosmtpd, an RFC 5321 SMTP server written by others), run by
 * /usr/bin/python3 on 127.0.0.1. A short script configures aiosmtpd's own SMTP class (plain,
 * STARTTLS required, or implicit TLS; AUTH PLAIN/LOGIN with one user, required, optional) and a
 * handler that prints every message it accepted, as the server received it, as one JSON line on
 * stdout; the test reads the headers and body from there. Recipients `nobody@...` are refused
 * with 550 (no such mailbox). Port 0 the first time; `restart` starts a
 * new server on the same port (an SMTP relay that was down and is back).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';

const SCRIPT = String.raw`
import sys, json, asyncio, ssl, logging, email, email.policy
logging.disable(logging.CRITICAL)
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

cfg = json.loads(sys.argv[1])
def out(obj):
    print(json.dumps(obj), flush=True)

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # A mailbox that does not exist, for the refusal tests.
        if address.startswith('nobody@'):
            return '550 5.1.1 no such mailbox'
        envelope.rcpt_tos.append(address)
        return '250 2.1.5 OK'

    async def handle_DATA(self, server, session, envelope):
        tls = server.transport is not None and server.transport.get_extra_info('ssl_object') is not None
        # The standard library's MIME parser decodes the body (quoted-printable, base64) and headers.
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        out({'event': 'message', 'mailFrom': envelope.mail_from, 'rcptTos': envelope.rcpt_tos,
             'data': envelope.content.decode('utf-8', 'replace'), 'tls': tls, 'login': session.auth_data,
             'headers': {k.lower(): str(v) for k, v in msg.items()}, 'body': msg.get_content()})
        return '250 2.0.0 accepted'

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == cfg['user']
          and auth_data.password.decode() == cfg['password'])
    out({'event': 'auth', 'mechanism': mechanism, 'ok': ok})
    # handled=False: aiosmtpd itself answers 535 to a failed login.
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None)

ctx = None
if cfg.get('tls') in ('starttls', 'implicit'):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cfg['cert'], cfg['key'])

def factory():
    kw = {'hostname': 'smtp.test', 'ident': 'aiosmtpd test peer'}
    if cfg.get('tls') == 'starttls':
        kw['tls_context'] = ctx
        kw['require_starttls'] = True
    if cfg.get('user'):
        kw['authenticator'] = authenticator
        kw['auth_required'] = True
        # Implicit TLS is encrypted from the first byte; aiosmtpd only knows about STARTTLS.
        kw['auth_require_tls'] = cfg.get('tls') == 'starttls'
    return SMTP(Handler(), **kw)

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host='127.0.0.1', port=cfg.get('port', 0),
                                      ssl=ctx if cfg.get('tls') == 'implicit' else None, reuse_address=True)
    out({'event': 'listening', 'port': server.sockets[0].getsockname()[1]})
    await server.serve_forever()

asyncio.run(main())
`;

export interface SmtpPeerOptions {
  tls?: 'none' | 'starttls' | 'implicit';
  certFile?: string;
  keyFile?: string;
  /** AUTH required with this user and password. */
  user?: string;
  password?: string;
}

export interface ReceivedMail {
  mailFrom: string;
  rcptTos: string[];
  /** The message as received: headers, blank line, body (CRLF line ends, transfer-encoded). */
  data: string;
  tls: boolean;
  /** The user that authenticated, if any. */
  login: string | null;
  /** Header fields by lower-case name, decoded by Python's email package. */
  headers: Record<string, string>;
  /** The text body, decoded (quoted-printable, base64, charset). */
  body: string;
}

export interface SmtpPeer {
  port: number;
  readonly messages: ReceivedMail[];
  readonly auths: Array<{ mechanism: string; ok: boolean }>;
  /** Resolves once `n` messages were received (in total); rejects after timeoutMs. */
  waitForMessages(n: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  /** Kills the server (SIGKILL): connections are refused until `restart`. */
  stop(): Promise<void>;
  /** A new server process on the same port. */
  restart(): Promise<void>;
  readonly running: boolean;
}

function stopProcess(p: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once('exit', () => resolve());
    p.kill(signal);
  });
}

export async function startSmtpPeer(opts: SmtpPeerOptions = {}): Promise<SmtpPeer> {
  const messages: ReceivedMail[] = [];
  const auths: Array<{ mechanism: string; ok: boolean }> = [];
  const waiters = new Set<() => void>();
  let proc: ChildProcess | undefined;
  let port = 0;

  const launch = async (): Promise<void> => {
    const cfg = { port, tls: opts.tls ?? 'none', cert: opts.certFile, key: opts.keyFile, user: opts.user, password: opts.password };
    const p = spawn('/usr/bin/python3', ['-u', '-c', SCRIPT, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    let stderr = '';
    p.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const rl = readline.createInterface({ input: p.stdout as NodeJS.ReadableStream });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`aiosmtpd did not listen within 15 s\n${stderr}`)), 15_000);
      p.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`aiosmtpd exited (${String(code)}) before listening\n${stderr}`));
      });
      rl.on('line', (line) => {
        const ev = JSON.parse(line) as Record<string, unknown>;
        if (ev['event'] === 'listening') {
          port = ev['port'] as number;
          clearTimeout(timer);
          resolve();
        } else if (ev['event'] === 'auth') auths.push({ mechanism: String(ev['mechanism']), ok: ev['ok'] === true });
        else if (ev['event'] === 'message') {
          const data = String(ev['data']);
          messages.push({
            mailFrom: String(ev['mailFrom']),
            rcptTos: ev['rcptTos'] as string[],
            data,
            tls: ev['tls'] === true,
            login: (ev['login'] as string | null) ?? null,
            headers: ev['headers'] as Record<string, string>,
            body: String(ev['body']),
          });
          for (const w of [...waiters]) w();
        }
      });
    });
  };

  await launch();
  return {
    get port() {
      return port;
    },
    messages,
    auths,
    get running() {
      return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
    },
    waitForMessages(n, timeoutMs = 20_000) {
      if (messages.length >= n) return Promise.resolve(messages.slice());
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (messages.length < n) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(messages.slice());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`aiosmtpd: ${messages.length} of ${n} messages after ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    async stop() {
      if (proc) await stopProcess(proc, 'SIGKILL');
    },
    async restart() {
      if (proc) await stopProcess(proc, 'SIGKILL');
      await launch();
    },
  };
}
