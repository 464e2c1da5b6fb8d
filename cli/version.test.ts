// convoy version: the client's part always, the manager's from GetVersion.
import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import { CONTROL_API_VERSION } from '../proto/defaults';
import { convoyVersion } from '../common/version';
import { CliError, type CliIO, type ControlApi } from './client';
import { run } from './main';

function io(api: Partial<ControlApi>) {
  let out = '';
  let err = '';
  let code = 0;
  const x: CliIO = {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    now: () => 0,
    env: { CONVOY_HOST: 'm1:7420' },
    connect: () => ({ api: api as ControlApi, close: () => undefined }),
    setExitCode: (c) => void (code = c),
  };
  return { io: x, out: () => out, err: () => err, code: () => code };
}

describe('convoy version', () => {
  it('prints the client, then the manager, with their API versions', async () => {
    const h = io({ getVersion: async () => ({ version: '9.9.9', apiVersion: '1.7', managerId: 'm1', leader: true, kekId: '' }) });
    assert.equal(await run(['version'], h.io), 0, h.err());
    assert.equal(
      h.out(),
      `Client:\n Version:     ${convoyVersion()}\n API version: ${CONTROL_API_VERSION}\nManager:\n Version:     9.9.9\n API version: 1.7\n Manager:     m1 at m1:7420 (leader)\n`,
    );
    assert.notEqual(convoyVersion(), 'unknown', 'package.json found');
  });

  it('warns when the major API versions differ', async () => {
    const h = io({ getVersion: async () => ({ version: '2.0.0', apiVersion: '2.0', managerId: 'm1', leader: false, kekId: '' }) });
    assert.equal(await run(['version'], h.io), 0);
    assert.match(h.out(), /warning: API 1\.\d+ \(client\) and 2\.0 \(manager\) differ in their major version\n$/);
  });

  it('no manager: the client part, then the error in one line, exit status 1', async () => {
    const h = io({
      getVersion: async () => {
        throw Object.assign(new Error('14 UNAVAILABLE'), { code: grpc.status.UNAVAILABLE, details: 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7420' });
      },
    });
    assert.equal(await run(['version'], h.io), 1);
    assert.match(h.out(), /^Client:\n Version: +\S+\n API version: +\S+\n$/);
    assert.match(h.err(), /^convoy: cannot reach a manager \(connection refused\)/);
  });

  it('no client bundle: the client part still, then the error', async () => {
    const h = io({});
    h.io.connect = () => {
      throw new CliError('no client certificate: give --tls-dir');
    };
    assert.equal(await run(['version'], h.io), 1);
    assert.match(h.out(), /^Client:\n Version: +\S+\n API version: +\S+\n$/);
    assert.equal(h.err(), 'convoy: no client certificate: give --tls-dir\n');
  });

  it('--format json: both parts as one object', async () => {
    const h = io({ getVersion: async () => ({ version: '9.9.9', apiVersion: '1.7', managerId: 'm1', leader: true, kekId: '' }) });
    assert.equal(await run(['version', '--format', 'json'], h.io), 0);
    const j = JSON.parse(h.out()) as { client: { apiVersion: string }; server: { version: string; host: string } };
    assert.equal(j.client.apiVersion, CONTROL_API_VERSION);
    assert.equal(j.server.version, '9.9.9');
    assert.equal(j.server.host, 'm1:7420');
  });
});
