// The Control API in-process behind the authorize wrapper, served over
// mutual TLS (client certificates required and verified against the test
// CA), so the handlers see real certificates through getAuthContext(); plus
// clients holding any bundle. For the role, audit, user and forwarding
// tests until the manager's own listener is TLS.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { TlsBundle } from '../../../common/identity';
import { nullLogger } from '../../../common/logger';
import type { AuditEvent, ConvoyEvent } from '../../../proto/events';
import { grpcPackages, type ControlClient } from '../../../proto/mod';
import type { CertIssuer } from '../../ca/issuer';
import { createControl } from '../../controlapi/mod';
import { nullObserver } from '../../hooks';
import { cluster as clusterFixture } from '../../orchestrator/testing/fixtures';
import { StateCache } from '../../state/cache';
import { MemoryStore } from '../../store/memory-store';
import { AuditLog, teeAudit } from '../audit';
import { authorize } from '../authorize';
import { PLAINTEXT_FOR_TESTS } from '../../../proto/client';
import { KeyRing } from '../../crypto/kek';

export interface SecureControl {
  store: MemoryStore;
  cache: StateCache;
  addr: string;
  /** Every audit record, in order. */
  audit: AuditEvent[];
  /** Every event the Control API published (audit records among them). */
  events: ConvoyEvent[];
  /** The authorized handlers the server serves (the dashboard calls them in-process). */
  handlers: object;
  /** The JSON-lines audit log. */
  auditFile: string;
  dir: string;
  /** A client presenting `bundle` (none: no client certificate), trusting `ca` (default the server bundle's). */
  client(bundle?: TlsBundle, o?: { ca?: string; metadata?: Record<string, string> }): ControlClient & { md: grpc.Metadata };
  stop(): Promise<void>;
}

export async function startSecureControl(o: { server: TlsBundle; issuer?: CertIssuer; store?: MemoryStore; managerId?: string }): Promise<SecureControl> {
  const own = !o.store;
  const store = o.store ?? new MemoryStore();
  if (own) await store.put('cluster', clusterFixture({ meta: null, workerTokenHash: 'w', managerTokenHash: 'm', clusterCidr: '10.200.0.0/16', vipCidr: '10.201.0.0/16' }), true);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-auth-'));
  const cache = new StateCache(store, nullLogger);
  await cache.start();
  const events: ConvoyEvent[] = [];
  const audit: AuditEvent[] = [];
  const managerId = o.managerId ?? 'm1';
  const observer = { ...nullObserver, event: (e: ConvoyEvent) => void events.push(e) };
  const handlers = createControl({ store, cache, managerId, tokensFile: path.join(dir, 'join-tokens.json'), natsUrl: () => '', log: nullLogger, observer, issuer: o.issuer, kek: new KeyRing([crypto.randomBytes(32)]), peerSecurity: PLAINTEXT_FOR_TESTS });
  const auditFile = path.join(dir, 'audit.log');
  const file = new AuditLog(auditFile);
  const service = grpcPackages().control.convoy.Control.service;
  const authorized = authorize(service, handlers, {
    audit: teeAudit({ record: (r) => void audit.push(r) }, file, { record: (r) => observer.event(r) }),
    source: `manager/${managerId}`,
    issuer: o.issuer,
  });
  const server = new grpc.Server();
  server.addService(service, authorized);
  const creds = grpc.ServerCredentials.createSsl(Buffer.from(o.server.ca), [{ private_key: Buffer.from(o.server.key), cert_chain: Buffer.from(o.server.cert) }], true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  const addr = `127.0.0.1:${port}`;
  const clients: ControlClient[] = [];
  const { Control } = grpcPackages().control.convoy;
  return {
    store,
    cache,
    addr,
    audit,
    events,
    handlers: authorized,
    auditFile,
    dir,
    client(bundle, co = {}) {
      const ca = Buffer.from(co.ca ?? o.server.ca);
      const c = new Control(addr, bundle ? grpc.credentials.createSsl(ca, Buffer.from(bundle.key), Buffer.from(bundle.cert)) : grpc.credentials.createSsl(ca), { 'grpc.ssl_target_name_override': 'localhost' });
      clients.push(c);
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(co.metadata ?? {})) md.set(k, v);
      return Object.assign(c, { md });
    },
    async stop() {
      for (const c of clients) c.close();
      server.forceShutdown();
      file.close();
      await cache.close();
      if (own) await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
