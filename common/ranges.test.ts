// Range checks: an overlap with a host route or the resolver is refused with both named.
import { strict as assert } from 'node:assert';
import { checkRanges, parseResolvConf, RangeConflictError } from './ranges';

const ours = [
  { name: 'cluster CIDR', cidr: '10.42.0.0/16' },
  { name: 'VIP range', cidr: '10.43.0.0/16' },
];

describe('address range checks', () => {
  it('accepts ranges clear of the routes and the resolver; ignores our own links and the default route', () => {
    checkRanges(ours, { routes: [{ dst: 'default' }, { dst: '192.168.1.0/24', dev: 'eth0' }, { dst: '10.42.3.0/24', dev: 'convoy0' }], resolvers: ['192.168.1.1'] });
  });

  it('refuses an overlap with a host route, naming both', () => {
    assert.throws(() => checkRanges(ours, { routes: [{ dst: '10.0.0.0/8', dev: 'eth0' }], resolvers: [] }), (e: Error) => e instanceof RangeConflictError && /cluster CIDR 10\.42\.0\.0\/16 overlaps the host route 10\.0\.0\.0\/8 \(dev eth0\)/.test(e.message));
  });

  it('refuses a range holding the resolver, and ranges overlapping each other', () => {
    assert.throws(() => checkRanges(ours, { routes: [], resolvers: ['10.43.0.10'] }), /VIP range 10\.43\.0\.0\/16 contains the host's DNS resolver 10\.43\.0\.10/);
    assert.throws(() => checkRanges([...ours, { name: 'lab network', cidr: '10.42.7.0/24' }], { routes: [], resolvers: [] }), /cluster CIDR 10\.42\.0\.0\/16 overlaps lab network/);
    assert.throws(() => checkRanges([{ name: 'cluster CIDR', cidr: '10.42.0/16' }], { routes: [], resolvers: [] }), /cluster CIDR "10\.42\.0\/16" is not an IPv4 CIDR/);
  });

  it('reads nameservers from resolv.conf', () => {
    assert.deepEqual(parseResolvConf('# x\nnameserver 1.1.1.1\nsearch lan\n nameserver 10.0.0.2\n'), ['1.1.1.1', '10.0.0.2']);
  });
});
