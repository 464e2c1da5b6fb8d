// convoy cluster ca against a fake manager: the CA, and the key-encryption
// key's id with how far a rotation has come.
import { strict as assert } from 'node:assert';
import type { ControlResponse } from '../client';
import { run } from '../main';
import { fake, NOW } from '../testing/fake';
import { kekLines } from './ca';

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
  sealedKeys: 0,
  sealedKeysCurrent: 0,
  sealedKeysUnopenable: 0,
  kekIds: [],
  kekRetired: [],
  ...kek,
});

const sealed = (total: number, current: number, unopenable = 0) => ({ total, current, unopenable });
const rotation = (lines: [string, string][]) => lines.find(([k]) => k === 'Rotation')?.[1];

describe('convoy cluster ca (CLI)', () => {
  it('shows the key-encryption key and that everything is sealed under it; no rotation line with one key', async () => {
    const f = fake({ getClusterInfo: async () => info({ kekId: 'aaaa', kekIds: ['aaaa'], sealedKeys: 4, sealedKeysCurrent: 4 }) });
    assert.equal(await run(['cluster', 'ca'], f.io), 0, f.err());
    assert.match(f.out(), new RegExp(`^Fingerprint:\\s+sha256:${'ab'.repeat(32)}\\n`));
    assert.match(f.out(), /\nKey-encryption key:\s+aaaa\nSealed under it:\s+4 of 4 sealed keys\n$/);
  });

  it('tells each stage of a rotation apart, so that "all sealed under it" is never taken for "done"', () => {
    // Step 1: the new key added last; everything under the old, current key. Not done: nothing retired.
    assert.match(rotation(kekLines({ ids: ['old', 'new'], retired: [], sealed: sealed(4, 4) }))!, /^not begun/);
    // Step 2 on a manager restarted with the new key first, others still sealing under the old one.
    assert.match(rotation(kekLines({ ids: ['new', 'old'], retired: ['old'], sealed: sealed(5, 3) }))!, /^under way/);
    // Step 2 finished: everything under the new key, the old one retired.
    const done = kekLines({ ids: ['new', 'old'], retired: ['old'], sealed: sealed(5, 5) });
    assert.match(rotation(done)!, /^done on this manager; not yet known to be done on the other managers/);
    assert.deepEqual(done.find(([k]) => k === 'Other keys in its file'), ['Other keys in its file', 'old (retired)']);
    // A manager restarted with its file unedited, if one got that far.
    assert.match(rotation(kekLines({ ids: ['old', 'new'], retired: ['old'], sealed: sealed(5, 0) }))!, /seals under a retired key/);
    // Something under a key this manager lacks is never "done".
    const lacking = kekLines({ ids: ['new', 'old'], retired: ['old'], sealed: sealed(5, 4, 1) });
    assert.doesNotMatch(rotation(lacking) ?? '', /^done/);
    assert.match(lacking.find(([k]) => k === 'Sealed under it')![1], /^4 of 5 sealed keys, 1 under a key this manager lacks$/);
    assert.equal(rotation(kekLines({ ids: ['only'], retired: ['older'], sealed: sealed(2, 2) })), undefined, 'one key, after a finished rotation: nothing to say');
  });

  it('asks every manager which key it seals under: "done" only when all of them name the current key', async () => {
    let calls = 0;
    const version = (kekId: string) => ({ version: '0.1.0', apiVersion: '1.2', managerId: '', leader: false, kekId });
    const f = fake({
      getClusterInfo: async () =>
        info({ kekId: 'new', kekIds: ['new', 'old'], kekRetired: ['old'], sealedKeys: 3, sealedKeysCurrent: 3, managers: [{ id: 'm1', addr: '10.0.0.1:7420', leader: true }, { id: 'm2', addr: '10.0.0.2:7420', leader: false }] }),
      getVersion: async () => version(calls++ === 0 ? 'new' : 'old'),
    });
    assert.equal(await run(['cluster', 'ca'], f.io), 0, f.err());
    assert.deepEqual(f.hosts.slice(1), ['10.0.0.1:7420', '10.0.0.2:7420'], 'each manager asked at its address');
    assert.match(f.out(), /\nManagers seal under:\s+m1 new, m2 old\n/);
    assert.match(f.out(), /\nRotation:\s+done on this manager; not yet known to be done on m2: restart them with this key first\n/);
    const all = kekLines({ ids: ['new', 'old'], retired: ['old'], sealed: sealed(3, 3), managers: [{ id: 'm1', kek: 'new' }, { id: 'm2', kek: 'new' }] });
    assert.match(rotation(all)!, /^done: every manager seals under this key/);
    const silent = kekLines({ ids: ['new', 'old'], retired: ['old'], sealed: sealed(3, 3), managers: [{ id: 'm1', kek: 'new' }, { id: 'm2', error: 'unreachable: connection refused' }] });
    assert.match(rotation(silent)!, /not yet known to be done on m2/);
    assert.match(silent.find(([k]) => k === 'Managers seal under')![1], /m2 \(unreachable: connection refused\)/);
  });

  it('prints it all in JSON; says nothing of a key-encryption key a manager older than 1.2 does not report', async () => {
    const j = fake({ getClusterInfo: async () => info({ kekId: 'x1', kekIds: ['x1', 'x0'], kekRetired: ['x0'], sealedKeys: 5, sealedKeysCurrent: 2, sealedKeysUnopenable: 1 }) });
    assert.equal(await run(['cluster', 'ca', '--format', 'json'], j.io), 0, j.err());
    assert.deepEqual(JSON.parse(j.out()).kek, { id: 'x1', ids: ['x1', 'x0'], retired: ['x0'], sealed: { total: 5, current: 2, unopenable: 1 }, managers: [] });
    const f = fake({ getClusterInfo: async () => info({}) });
    assert.equal(await run(['cluster', 'ca'], f.io), 0, f.err());
    assert.doesNotMatch(f.out(), /Key-encryption/);
  });
});
