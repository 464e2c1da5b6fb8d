// Dispatcher clients, one per manager address per process, shared by every
// agent of the process (the hollow fleet runs a thousand agents in one
// process: they share one HTTP/2 connection per manager, each with its own
// session and streams on it). Reference-counted; closed with the last user.
import * as crypto from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { dispatcherClient, type ClientSecurity } from '../../proto/client';
import type { DispatcherClient } from '../../proto/mod';

/** Channel options. Messages can be large: a COMPLETE set of a busy node. */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  // Reconnect to a restarted manager quickly; the session loop has its own backoff on top.
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 2_000,
};

export interface ClientLease {
  client: DispatcherClient;
  release(): void;
}

export class DispatcherClientPool {
  private readonly clients = new Map<string, { client: DispatcherClient; refs: number }>();

  /** A client to `addr` presenting `security`: one channel per address and certificate (agents of one process share it only if they are one node). */
  acquire(addr: string, security: ClientSecurity): ClientLease {
    const who = security.mode === 'mtls' ? crypto.createHash('sha256').update(security.cert).digest('hex') : security.mode;
    const k = `${addr}|${who}`;
    let e = this.clients.get(k);
    if (!e) {
      e = { client: dispatcherClient(addr, { security, channelOptions: CHANNEL_OPTIONS }), refs: 0 };
      this.clients.set(k, e);
    }
    e.refs++;
    const entry = e;
    let released = false;
    return {
      client: entry.client,
      release: () => {
        if (released) return;
        released = true;
        entry.refs--;
        if (entry.refs === 0 && this.clients.get(k) === entry) {
          this.clients.delete(k);
          entry.client.close();
        }
      },
    };
  }
}

/** The process-wide pool (what startAgent uses unless told otherwise). */
export const sharedClientPool = new DispatcherClientPool();
