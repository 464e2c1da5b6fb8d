// cli/fast-ip.ts: the same answers as node's isIP/isIPv6 for addresses,
// names and junk (what TLS's server-identity check and grpc-js decide by).
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { installFastIpChecks, isIP, isIPv6 } from './fast-ip';

describe('cli/fast-ip', () => {
  it('isIP and isIPv6 answer as node does', () => {
    const inputs: unknown[] = ['127.0.0.1', '10.41.0.11', '::1', '::', 'fe80::1%eth0', '::ffff:10.0.0.1', '2001:db8::8a2e:370:7334', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '1::2::3', 'convoy-manager', '1.2.3', '256.1.1.1', '', ':', 'a:b', '[::1]', 'unix:/x', 12, undefined, null, { toString: () => '::1' }];
    for (const s of inputs) {
      assert.equal(isIPv6(s as string), net.isIPv6(s as string), String(s));
      assert.equal(isIP(s as string), net.isIP(s as string), String(s));
    }
    assert.throws(() => isIPv6(Symbol('x') as unknown as string), TypeError);
    assert.throws(() => net.isIPv6(Symbol('x') as unknown as string), TypeError);
  });

  it('installs on the net module node\'s tls reads, and TLS identity checks give the same verdicts', () => {
    const tls = require('node:tls') as typeof import('node:tls');
    const cert = { subject: { CN: 'x' }, subjectaltname: 'DNS:convoy-manager, IP Address:127.0.0.1' } as unknown as import('node:tls').PeerCertificate;
    const before = ['convoy-manager', '127.0.0.1', '10.0.0.1', 'other'].map((h) => String(tls.checkServerIdentity(h, cert)));
    const saved = { isIP: net.isIP, isIPv6: net.isIPv6 };
    try {
      installFastIpChecks();
      assert.equal((require('node:net') as typeof net).isIP, isIP);
      assert.deepEqual(['convoy-manager', '127.0.0.1', '10.0.0.1', 'other'].map((h) => String(tls.checkServerIdentity(h, cert))), before);
    } finally {
      Object.assign(require('node:net') as typeof net, saved);
    }
  });
});
