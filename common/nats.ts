// NATS plumbing shared by managers and agents: one connection that is (re)made
// in the background and never blocks or throws into the caller. Losing NATS
// never stops scheduling or running containers: publishes made while it is
// away are buffered up to a fixed size (older ones are dropped and counted),
// and go out when it returns.
import { connect, JSONCodec, type NatsConnection, type Msg } from 'nats';
import { natsTlsOptions } from './nats-tls';
import { errMsg, nullLogger, type Logger } from './logger';
import type { TlsBundle } from './identity';

/**
 * Publishes kept while NATS is away (nats.js would buffer without bound while
 * reconnecting, so the link keeps its own queue then); the oldest go first.
 */
export const MAX_QUEUED = 1_000;
/** Pause between connection attempts. */
export const RETRY_MS = 500;

export interface NatsLinkOptions {
  url: string;
  /**
   * This process's certificate and the cluster CA: the link speaks TLS only
   * and presents it (Convoy's NATS maps it to the identity's permissions,
   * proto/nats-auth.ts).
   */
  tls: TlsBundle;
  /** Client name the server shows ("convoy-manager-<id>"). */
  name: string;
  logger?: Logger;
  /** Runs after every (re)connect (e.g. make sure a JetStream stream exists). Errors are logged. */
  onConnect?: (nc: NatsConnection) => Promise<void>;
}

const codec = JSONCodec<unknown>();


export class NatsLink {
  private nc: NatsConnection | undefined;
  /** false while nats.js reconnects: publishes go to our bounded queue instead of its unbounded one. */
  private up = false;
  private closed = false;
  private readonly queue: { subject: string; data: Uint8Array }[] = [];
  private readonly subs: { subject: string; cb: (data: unknown, m: Msg) => void; queue?: string; active?: { unsubscribe(): void } }[] = [];
  private readonly log: Logger;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  published = 0;
  dropped = 0;

  private readonly opts: NatsLinkOptions;

  constructor(opts: NatsLinkOptions) {
    this.opts = { ...opts };
    this.log = opts.logger ?? nullLogger;
  }

  start(): this {
    this.loop ??= this.run();
    return this;
  }

  get connected(): boolean {
    return this.up && !!this.nc && !this.nc.isClosed();
  }

  connection(): NatsConnection | undefined {
    return this.nc && !this.nc.isClosed() ? this.nc : undefined;
  }

  private flushQueue(nc: NatsConnection): void {
    for (const q of this.queue.splice(0)) {
      try {
        nc.publish(q.subject, q.data);
        this.published++;
      } catch {
        this.dropped++;
      }
    }
  }

  publish(subject: string, data: unknown): void {
    const bytes = codec.encode(data);
    const nc = this.up ? this.connection() : undefined;
    if (!nc) {
      this.queue.push({ subject, data: bytes });
      if (this.queue.length > MAX_QUEUED) {
        this.queue.shift();
        this.dropped++;
      }
      return;
    }
    try {
      nc.publish(subject, bytes);
      this.published++;
    } catch {
      this.dropped++; // reconnect buffer full, or closing
    }
  }

  /**
   * A renewed certificate: the link reconnects with it (nats.js keeps the
   * material it connected with for its own reconnects).
   */
  setTls(tls: TlsBundle): void {
    this.opts.tls = tls;
    void this.nc?.close().catch(() => undefined);
  }

  /** JSON messages on `subject`; kept across reconnects. Returns an unsubscribe function. */
  subscribe(subject: string, cb: (data: unknown, m: Msg) => void, queue?: string): () => void {
    const s: (typeof this.subs)[number] = { subject, cb, queue };
    this.subs.push(s);
    const nc = this.connection();
    if (nc) this.attach(nc, s);
    return () => {
      s.active?.unsubscribe();
      const i = this.subs.indexOf(s);
      if (i >= 0) this.subs.splice(i, 1);
    };
  }

  private attach(nc: NatsConnection, s: (typeof this.subs)[number]): void {
    s.active = nc.subscribe(s.subject, {
      queue: s.queue,
      callback: (err, m) => {
        if (err) return;
        let data: unknown;
        try {
          data = codec.decode(m.data);
        } catch {
          return; // not JSON: not ours
        }
        try {
          s.cb(data, m);
        } catch (e) {
          this.log.warn('NATS message handler failed', { subject: m.subject, err: errMsg(e) });
        }
      },
    });
  }

  private async run(): Promise<void> {
    let warned = false;
    while (!this.closed) {
      let nc: NatsConnection;
      try {
        nc = await connect({
          servers: this.opts.url,
          name: this.opts.name,
          tls: natsTlsOptions(this.opts.url, this.opts.tls),
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: RETRY_MS,
          timeout: 2_000,
        });
      } catch (e) {
        if (!warned) this.log.warn('NATS not reachable, retrying', { url: this.opts.url, err: errMsg(e) });
        warned = true;
        await new Promise<void>((r) => {
          this.wake = r;
          setTimeout(r, RETRY_MS).unref();
        });
        continue;
      }
      if (this.closed) {
        await nc.close().catch(() => undefined);
        return;
      }
      warned = false;
      this.nc = nc;
      this.log.info('NATS connected', { url: this.opts.url });
      for (const s of this.subs) this.attach(nc, s);
      this.up = true;
      this.flushQueue(nc);
      void this.onConnect(nc);
      void (async () => {
        for await (const st of nc.status()) {
          if (st.type === 'reconnect') {
            this.log.info('NATS reconnected', { url: this.opts.url });
            this.up = true;
            this.flushQueue(nc);
            void this.onConnect(nc);
          } else if (st.type === 'disconnect') {
            this.up = false;
            this.log.warn('NATS disconnected', { url: this.opts.url });
          }
        }
      })().catch(() => undefined);
      await nc.closed();
      this.up = false;
      this.nc = undefined;
      for (const s of this.subs) s.active = undefined;
    }
  }

  private async onConnect(nc: NatsConnection): Promise<void> {
    if (!this.opts.onConnect) return;
    try {
      await this.opts.onConnect(nc);
    } catch (e) {
      this.log.warn('NATS on-connect step failed', { err: errMsg(e) });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    const nc = this.nc;
    if (nc) {
      await Promise.race([nc.flush().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000).unref())]);
      await nc.close().catch(() => undefined);
    }
    await this.loop?.catch(() => undefined);
  }
}
