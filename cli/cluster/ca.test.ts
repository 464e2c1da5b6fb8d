// convoy cluster ca against a fake manager: the CA, and the key-encryption
// key's id with how far a rotation has come.
import { strict as assert } from 'node:assert';
import type { ControlResponse } from '../client';
import { run } from '../main';
import { fake, NOW } from '../testing/fake';
import { sealedLine } from './ca';

type ClusterInfo = ControlResponse<'getClusterInfo'>;

const info = (kek: Partial<ClusterInfo>): ClusterInfo => ({
  cluster: null,
  managers: [],
  nodes: 0,
  services: 0,
  tasks: 0,
  natsUrl: '',
  caCert: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n',
  caFingerprint: 'ab'.repeat(32),
  caNotAfter: NOW + 1000,
  kekId: '',
  kekKeys: 0,
  sealedKeys: 0,
  sealedKeysCurrent: 0,
  sealedKeysUnopenable: 0,
  ...kek,
});

describe('convoy cluster ca (CLI)', () => {
  it('shows the key-encryption key and that everything is sealed under it', async () => {
    const f = fake({ getClusterInfo: async () => info({ kekId: '3f2a9c1e0b7d4a55', kekKeys: 1, sealedKeys: 4, sealedKeysCurrent: 4 }) });
    assert.equal(await run(['cluster', 'ca'], f.io), 0, f.err());
    assert.match(f.out(), new RegExp(`^Fingerprint:\\s+sha256:${'ab'.repeat(32)}\\n`));
    assert.match(f.out(), /\nKey-encryption key:\s+3f2a9c1e0b7d4a55\n/);
    assert.match(f.out(), /\nSealed under it:\s+4 of 4 sealed keys\n$/);
  });

  it('during a rotation: how many keys the file holds and what still waits for a manager restart', async () => {
    const f = fake({ getClusterInfo: async () => info({ kekId: '3f2a9c1e0b7d4a55', kekKeys: 2, sealedKeys: 5, sealedKeysCurrent: 2, sealedKeysUnopenable: 1 }) });
    assert.equal(await run(['cluster', 'ca'], f.io), 0, f.err());
    assert.match(f.out(), /\nKey-encryption key:\s+3f2a9c1e0b7d4a55 \(the answering manager's file holds 2 keys: a rotation\)\n/);
    assert.match(f.out(), /\nSealed under it:\s+2 of 5 sealed keys \(2 under a previous key: restart every manager with the new key first; 1 under a key this manager lacks\)\n/);
    const j = fake({ getClusterInfo: async () => info({ kekId: 'x1', kekKeys: 2, sealedKeys: 5, sealedKeysCurrent: 2, sealedKeysUnopenable: 1 }) });
    assert.equal(await run(['cluster', 'ca', '--format', 'json'], j.io), 0, j.err());
    assert.deepEqual(JSON.parse(j.out()).kek, { id: 'x1', keys: 2, sealed: { total: 5, current: 2, unopenable: 1 } });
  });

  it('says nothing of a key-encryption key a manager older than 1.2 does not report', async () => {
    const f = fake({ getClusterInfo: async () => info({}) });
    assert.equal(await run(['cluster', 'ca'], f.io), 0, f.err());
    assert.doesNotMatch(f.out(), /Key-encryption/);
    assert.equal(sealedLine({ total: 0, current: 0, unopenable: 0 }), '0 of 0 sealed keys');
  });
});
