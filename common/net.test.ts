// freePort: a bindable port outside the kernel's ephemeral range (where an
// outgoing connection's source port could take it before the caller binds).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ephemeralPortRange, freePort } from './net';

describe('freePort', () => {
  it('returns distinct bindable ports below the ephemeral range', async () => {
    const [lo] = ephemeralPortRange();
    const ports = new Set<number>();
    for (let i = 0; i < 10; i++) {
      const p = await freePort();
      assert.ok(p >= 1024 && p < lo, `port ${p} below the ephemeral range (from ${lo})`);
      ports.add(p);
      const s = net.createServer();
      await new Promise<void>((resolve, reject) => s.once('error', reject).listen(p, '127.0.0.1', resolve));
      await new Promise((r) => s.close(r));
    }
    assert.ok(ports.size > 1, 'chosen at random, not one fixed port');
  });

  it('never hands out a port within 4 of one it handed out lately (a manager binds its port + 3 and + 4 after its etcd and NATS chose theirs)', async () => {
    const got: number[] = [];
    for (let i = 0; i < 200; i++) got.push(await freePort());
    got.sort((a, b) => a - b);
    for (let i = 1; i < got.length; i++) assert.ok(got[i] - got[i - 1] > 4, `ports ${got[i - 1]} and ${got[i]} handed out within 4 of each other`);
  });

  it('reads the range from the kernel, and falls back to Linux defaults', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convoy-net-test-'));
    try {
      fs.writeFileSync(path.join(dir, 'range'), '40000\t50000\n');
      assert.deepEqual(ephemeralPortRange(path.join(dir, 'range')), [40000, 50000]);
      fs.writeFileSync(path.join(dir, 'bad'), 'x y\n');
      assert.deepEqual(ephemeralPortRange(path.join(dir, 'bad')), [32768, 60999]);
      assert.deepEqual(ephemeralPortRange(path.join(dir, 'missing')), [32768, 60999]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
