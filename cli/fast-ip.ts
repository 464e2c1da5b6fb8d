// node's net.isIP / net.isIPv6 with the same answers, minus node's IPv6
// regular expression for text that has no ':' (no IPv6 address lacks one).
// A TLS connection asks net.isIP of its server name ('convoy-manager') when
// it starts and again in checkServerIdentity, and grpc-js asks isIPv6 of
// every address it dials; the first use of that expression costs V8 some
// 5-15 ms to compile and tier up, a tenth of a `convoy service ls`
// (docs/cli.md, start-up). The CLI's processIO installs these on node's net
// module, which node's tls and grpc-js read their isIP from at each call.
// Anything with a ':' still goes to node's own check, so what TLS verifies
// (an IP SAN for an address, a DNS SAN for a name) is decided exactly as before.
import * as net from 'node:net';

const nodeIsIPv6 = net.isIPv6;
const nodeIsIPv4 = net.isIPv4;

/** net.isIPv6, reading its argument as text as node does (a Symbol throws in both). */
export function isIPv6(s: string): boolean {
  const t = `${s}`;
  return t.includes(':') && nodeIsIPv6(t);
}

/** net.isIP: 4, 6 or 0. */
export function isIP(s: string): number {
  return nodeIsIPv4(s) ? 4 : isIPv6(s) ? 6 : 0;
}

/** Puts isIP and isIPv6 on node's net module for this process (the CLI binary only; idempotent). */
export function installFastIpChecks(): void {
  // The module object itself (an `import *` namespace may be a copy of it).
  const m = require('node:net') as { isIP: typeof isIP; isIPv6: typeof isIPv6 };
  m.isIP = isIP;
  m.isIPv6 = isIPv6;
}
