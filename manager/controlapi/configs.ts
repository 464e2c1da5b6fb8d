// Control API: configs. Stored sealed like secrets (one code path, and a
// config often holds what should not sit in etcd in clear), but not secret
// to the operator: GetConfig returns the value, as `docker config inspect`
// does. ListConfigs does not (a listing stays small).
import type { ControlHandlers } from '../../proto/mod';
import type { Ctx } from './common';
import { CONFIGS, fileOps, openFile, publicFile, usersOf, type FileObject } from './files';

type Handlers = Pick<ControlHandlers, 'CreateConfig' | 'GetConfig' | 'ListConfigs' | 'RemoveConfig' | 'RotateConfig'>;

export function configHandlers(c: Ctx): Handlers {
  const { unary, cache } = c;
  const ops = fileOps(c, CONFIGS);
  const answer = (o: FileObject, withData = false) => ({ config: publicFile(o), services: usersOf(cache, CONFIGS, o.id), data: withData ? openFile(c.kek, CONFIGS, o) : Buffer.alloc(0) });
  return {
    CreateConfig: unary('CreateConfig', async (req: { spec: unknown; data: Buffer }) => answer(await ops.create(req.spec, req.data))),
    GetConfig: unary('GetConfig', async (req: { config: string }) => answer(await ops.get(req.config), true)),
    ListConfigs: unary('ListConfigs', async () => ({ configs: (await ops.list()).map((o) => answer(o)) })),
    RemoveConfig: unary('RemoveConfig', async (req: { config: string }) => {
      await ops.remove(req.config);
      return {};
    }),
    RotateConfig: unary('RotateConfig', async (req: { config: string; data: Buffer }) => {
      const r = await ops.rotate(req.config, req.data);
      return { config: publicFile(r.obj), services: r.services, data: Buffer.alloc(0) };
    }),
  };
}
