import { strict as assert } from 'node:assert';
import { channelCredentials, isLoopbackTarget, PLAINTEXT_FOR_TESTS } from './client';

describe('client credentials', () => {
  it('plaintext only to loopback (unit harnesses), never to a network peer', () => {
    for (const t of ['127.0.0.1:7420', '127.3.2.1:1', 'localhost:5', '[::1]:7420', 'dns:127.0.0.1:9']) assert.ok(isLoopbackTarget(t), t);
    for (const t of ['10.41.0.11:7420', '0.0.0.0:7420', '[fe80::1]:7420', 'manager:7420', '127.0.0.1.example.com:1']) assert.ok(!isLoopbackTarget(t), t);
    assert.doesNotThrow(() => channelCredentials(PLAINTEXT_FOR_TESTS, '127.0.0.1:7420'));
    assert.throws(() => channelCredentials(PLAINTEXT_FOR_TESTS, '10.41.0.11:7420'), /plaintext is for test harnesses on loopback, not 10\.41\.0\.11:7420/);
    assert.throws(() => channelCredentials({ mode: 'local' }, '10.41.0.11:7420'), /local credentials are for unix sockets/);
  });
});
