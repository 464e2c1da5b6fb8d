// Control API: secrets. The value goes in at create and rotate and never
// comes back out (responses carry the object with its sealed parts blank);
// only the nodes that run a task using a secret get it, through their
// assignment stream (manager/dispatcher/assignments.ts).
//
// Registry credentials (`registry login`) are secrets too: one per registry
// host, named registry-auth-<host>, labelled convoy.registry=<host>, the
// value {"registry","username","password"} as JSON. A service created or
// updated --with-registry-auth refers to the one of its image's registry
// (container.registryAuth); its nodes get it in their assignments and the
// agent's puller uses it (agent/runtime/image/registry.ts).
import * as grpc from '@grpc/grpc-js';
import type { ControlHandlers } from '../../proto/mod';
import { ApiError, invalid } from '../api';
import { REGISTRY_HOST_RE, REGISTRY_PASSWORD_MAX_BYTES, REGISTRY_USERNAME_MAX_BYTES } from '../spec/files';
import type { Ctx } from './common';
import { fileOps, publicFile, REGISTRY_LABEL, registrySecretName, SECRETS, usersOf } from './files';

type Handlers = Pick<ControlHandlers, 'CreateSecret' | 'GetSecret' | 'ListSecrets' | 'RemoveSecret' | 'RotateSecret' | 'RegistryLogin'>;

export function secretHandlers(c: Ctx): Handlers {
  const { unary, cache } = c;
  const ops = fileOps(c, SECRETS);
  const answer = (o: Awaited<ReturnType<typeof ops.get>>) => ({ secret: publicFile(o), services: usersOf(cache, SECRETS, o.id) });
  return {
    CreateSecret: unary('CreateSecret', async (req: { spec: unknown; data: Buffer }) => answer(await ops.create(req.spec, req.data))),
    GetSecret: unary('GetSecret', async (req: { secret: string }) => answer(await ops.get(req.secret))),
    ListSecrets: unary('ListSecrets', async () => ({ secrets: (await ops.list()).map(answer) })),
    RemoveSecret: unary('RemoveSecret', async (req: { secret: string }) => {
      await ops.remove(req.secret);
      return {};
    }),
    RotateSecret: unary('RotateSecret', async (req: { secret: string; data: Buffer }) => {
      const r = await ops.rotate(req.secret, req.data);
      return { secret: publicFile(r.obj), services: r.services };
    }),
    RegistryLogin: unary('RegistryLogin', async (req: { registry: string; username: string; password: string }) => {
      const errs: { field: string; message: string }[] = [];
      const host = req.registry ?? '';
      if (host.length > 255 || !REGISTRY_HOST_RE.test(host)) errs.push({ field: 'registry', message: `${JSON.stringify(host.slice(0, 64))} is not a registry host[:port]` });
      if (!req.username || Buffer.byteLength(req.username) > REGISTRY_USERNAME_MAX_BYTES || /[:\0\n]/.test(req.username)) errs.push({ field: 'username', message: `must be 1..${REGISTRY_USERNAME_MAX_BYTES} bytes, without ':', NUL or newline` });
      if (!req.password || Buffer.byteLength(req.password) > REGISTRY_PASSWORD_MAX_BYTES || /[\0\n]/.test(req.password)) errs.push({ field: 'password', message: `must be 1..${REGISTRY_PASSWORD_MAX_BYTES} bytes, without NUL or newline` });
      if (errs.length) throw invalid(errs);
      const data = Buffer.from(JSON.stringify({ registry: host, username: req.username, password: req.password }));
      const name = registrySecretName(host);
      await c.reads.fresh();
      const existing = [...cache.secrets.values()].find((s) => s.spec?.name === name);
      if (existing && existing.spec?.labels?.[REGISTRY_LABEL] !== host) throw new ApiError(grpc.status.ALREADY_EXISTS, `secret "${name}" exists and is not registry credentials; remove it first`);
      const obj = existing ? (await ops.rotate(existing.id, data)).obj : await ops.create({ name, labels: { [REGISTRY_LABEL]: host } }, data);
      data.fill(0);
      return answer(obj);
    }),
  };
}
