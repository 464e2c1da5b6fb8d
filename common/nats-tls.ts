// TLS options for nats.js from a bundle, in a module of its own so that the
// CLI can build them without loading the nats library (cli/lazy.test.ts).
import * as tls from 'node:tls';
import type { TlsOptions } from 'nats';
import type { TlsBundle } from './identity';

/**
 * nats.js's TLS options for a bundle. The server certificate is checked
 * against the host the URL names: nats.js upgrades a plain socket and, for
 * an IP address, gives Node no server name, which then checks "localhost".
 */
export function natsTlsOptions(url: string, b: TlsBundle): TlsOptions {
  const first = url.split(',')[0].trim();
  const host = (/^[a-z]+:\/\//.test(first) ? new URL(first).hostname : first.replace(/:\d+$/, '')).replace(/^\[|\]$/g, '');
  return {
    ca: b.ca,
    cert: b.cert,
    key: b.key,
    checkServerIdentity: (_name: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(host, cert),
  } as TlsOptions;
}
