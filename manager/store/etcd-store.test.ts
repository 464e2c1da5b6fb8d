// etcd3's failures leave the etcd store as the store's typed errors.
import { strict as assert } from 'node:assert';
import { ClientClosedError, EtcdLeaseInvalidError, GRPCDeadlineExceededError, GRPCInvalidArgumentError, GRPCUnavailableError } from 'etcd3';
import { storeError } from './etcd-store';
import { LeaseNotFoundError, StoreUnavailableError } from './errors';

describe('EtcdStore errors', () => {
  it('turns etcd3 failures into typed errors', () => {
    assert.ok(storeError(new GRPCUnavailableError('14 UNAVAILABLE: No connection established')) instanceof StoreUnavailableError);
    assert.ok(storeError(new GRPCDeadlineExceededError('deadline')) instanceof StoreUnavailableError);
    const lease = storeError(new EtcdLeaseInvalidError('694d77aa9e38260f'));
    assert.ok(lease instanceof LeaseNotFoundError);
    assert.ok(storeError(new ClientClosedError('convoy')) instanceof StoreUnavailableError);
    const refused = new GRPCInvalidArgumentError('etcdserver: request is too large');
    assert.equal(storeError(refused), refused, 'a request etcd refuses as malformed is a bug, not an outage');
    const other = new RangeError('a bug');
    assert.equal(storeError(other), other, 'not an etcd failure: left as is (INTERNAL)');
  });
});
