// Where registry credentials may go: a token realm over plain HTTP is
// refused (and never contacted) unless its host is an insecure registry;
// over an allowed realm the token service gets the Basic credentials and
// the registry the Bearer token; a redirect to another origin carries no
// Authorization header; a credentials lookup (the cluster's) is asked per
// registry host.
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RegistryClient } from './registry';

interface Seen {
  path: string;
  auth: string | undefined;
}

async function server(handler: (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen[]) => void): Promise<{ host: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const s = http.createServer((req, res) => {
    seen.push({ path: req.url ?? '', auth: req.headers.authorization });
    handler(req, res, seen);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(s.address() as AddressInfo).port}`;
  return { host, seen, close: () => new Promise<void>((r) => s.close(() => r())) };
}

const MANIFEST = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'x', digest: 'sha256:00', size: 0 }, layers: [] });
const creds = { username: 'alice', password: 's3cret' };
const basic = 'Basic ' + Buffer.from('alice:s3cret').toString('base64');

describe('registry credentials: where they may go', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  it('refuses a plain-HTTP token realm on a host that is not insecure, without contacting it', async () => {
    const token = await server((_q, res) => res.end(JSON.stringify({ token: 't' })));
    closers.push(token.close);
    const reg = await server((req, res) => {
      if (req.headers.authorization?.startsWith('Bearer ')) res.end(MANIFEST);
      else res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${token.host}/token",service="reg"` }).end();
    });
    closers.push(reg.close);
    const c = new RegistryClient({ insecureRegistries: [reg.host], credentials: (h) => (h === reg.host ? creds : undefined) });
    await assert.rejects(c.getManifest({ registry: reg.host, repository: 'app', tag: '1' }, '1'), /token realm http:\/\/127\.0\.0\.1:\d+: not HTTPS, and .* is not an insecure registry; no credentials sent/);
    assert.equal(token.seen.length, 0, 'the realm was contacted');

    // Listed as insecure too: the token service gets the Basic credentials, the registry the token.
    const ok = new RegistryClient({ insecureRegistries: [reg.host, token.host], credentials: (h) => (h === reg.host ? creds : undefined) });
    const m = await ok.getManifest({ registry: reg.host, repository: 'app', tag: '1' }, '1');
    assert.equal(m.body.toString(), MANIFEST);
    assert.equal(token.seen[0].auth, basic);
    assert.match(token.seen[0].path, /scope=repository%3Aapp%3Apull/);
    assert.equal(reg.seen.at(-1)!.auth, 'Bearer t');
  });

  it('sends no Authorization header along a redirect to another origin', async () => {
    const storage = await server((_q, res) => res.end(MANIFEST));
    closers.push(storage.close);
    const reg = await server((req, res) => {
      if (!req.headers.authorization) res.writeHead(401, { 'www-authenticate': 'Basic realm="reg"' }).end();
      else res.writeHead(307, { location: `http://${storage.host}/blob` }).end();
    });
    closers.push(reg.close);
    const c = new RegistryClient({ insecureRegistries: [reg.host], credentials: { [reg.host]: creds } });
    await c.getManifest({ registry: reg.host, repository: 'app', tag: '1' }, '1');
    assert.equal(reg.seen.at(-1)!.auth, basic, 'the registry itself gets them');
    assert.deepEqual(storage.seen.map((s) => s.auth), [undefined], 'the redirect target got credentials');
  });
});
