import { strict as assert } from 'node:assert';
import { addrOf, contains, formatCidr, nth, offsetIn, overlaps, parseCidr, parseCidrOrAddress } from './cidr';

describe('cidr', () => {
  it('parses a CIDR, rounding a host address down to its network, and requires the prefix', () => {
    assert.equal(formatCidr(parseCidr('10.42.3.7/24')), '10.42.3.0/24');
    assert.throws(() => parseCidr('10.42.3.0'), /not an IPv4 CIDR/);
    assert.throws(() => parseCidr('10.42.3.0/33'), /not an IPv4 CIDR/);
    assert.throws(() => parseCidr('10.42.300.0/24'), /not an IPv4 address/);
    assert.equal(formatCidr(parseCidrOrAddress('192.0.2.9')), '192.0.2.9/32');
  });

  it('answers containment, overlap, offsets and the n-th address', () => {
    const c = parseCidr('10.42.0.0/16');
    assert.ok(contains(c, '10.42.255.1'));
    assert.ok(!contains(c, '10.43.0.1'));
    assert.ok(overlaps(c, parseCidr('10.42.7.0/24')));
    assert.ok(!overlaps(c, parseCidr('10.43.0.0/16')));
    assert.equal(offsetIn(parseCidr('10.42.3.0/24'), '10.42.3.7/24'), 7);
    assert.equal(offsetIn(parseCidr('10.42.3.0/24'), '10.42.4.7'), -1);
    assert.equal(nth(parseCidr('10.42.3.0/24'), 1), '10.42.3.1');
    assert.equal(addrOf('10.42.3.7/24'), '10.42.3.7');
  });
});
