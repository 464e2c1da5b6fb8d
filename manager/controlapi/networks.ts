// Control API: networks. Every network shares the cluster CIDR (a /24 per
// node) and is isolated by nftables; the leader's allocator gives a new one
// its VXLAN id.
import * as grpc from '@grpc/grpc-js';
import type { ControlHandlers, Network, Service } from '../../proto/mod';
import { auditTarget } from '../auth/authorize';
import { ApiError, invalid } from '../api';
import { DEFAULT_NETWORK } from '../allocator/allocator';
import { newId } from '../ids';
import { validateNetworkSpec } from '../spec/objects';
import { ConflictError } from '../store/store';
import { findNetwork, paged, retryConflicts, type Ctx } from './common';

type Handlers = Pick<ControlHandlers, 'CreateNetwork' | 'GetNetwork' | 'ListNetworks' | 'RemoveNetwork'>;

export function networkHandlers(c: Ctx): Handlers {
  const { store, cache, reads, unary } = c;
  return {
    CreateNetwork: unary('CreateNetwork', async (req: { spec: Network['spec'] }) => {
      const v = validateNetworkSpec(req.spec);
      if (!v.ok) throw invalid(v.errors);
      const spec = v.spec;
      if (spec.subnet) throw new ApiError(grpc.status.INVALID_ARGUMENT, `spec.subnet: networks share the cluster CIDR (a /24 per node) and are isolated by nftables; a subnet of its own is not supported`);
      await reads.fresh();
      if ([...cache.networks.values()].some((n) => n.spec?.name === spec.name)) throw new ApiError(grpc.status.ALREADY_EXISTS, `spec.name: network "${spec.name}" already exists`);
      const net: Network = { id: newId(), meta: null, spec: { name: spec.name, subnet: '', labels: spec.labels ?? {}, internal: !!spec.internal }, vni: 0, subnet: '' };
      await reads.seen(await store.put('networks', net, true));
      return { network: findNetwork(cache, net.id) };
    }),
    GetNetwork: unary('GetNetwork', async (req: { network: string }) => {
      await reads.fresh();
      return { network: findNetwork(cache, req.network) };
    }),
    ListNetworks: unary('ListNetworks', async (req: { pageSize: number; pageToken: string }) => {
      await reads.fresh();
      const page = paged(cache.networks.values(), req, (n) => [n.spec?.name ?? '', n.id]);
      return { networks: page.items, nextPageToken: page.nextPageToken };
    }),
    RemoveNetwork: unary('RemoveNetwork', async (req: { network: string }, _md, call) => {
      await reads.fresh();
      const found = findNetwork(cache, req.network);
      auditTarget(call, { id: found.id, name: found.spec?.name });
      const name = found.spec?.name ?? '';
      if (name === DEFAULT_NETWORK) throw new ApiError(grpc.status.FAILED_PRECONDITION, 'network "default" is built in and cannot be removed');
      const users = [...cache.services.values()].filter((s: Service) => s.spec?.networks?.includes(name)).map((s) => s.spec?.name);
      if (users.length) throw new ApiError(grpc.status.FAILED_PRECONDITION, `network "${name}" is in use by service(s) ${users.join(', ')}`);
      // The allocator writes networks too (its VXLAN id): retry on the current version.
      await retryConflicts(false, async () => {
        const cur = await store.get<Network>('networks', found.id);
        if (!cur) return;
        const r = await store.batch([{ op: 'delete', kind: 'networks', obj: cur }]);
        if (r.conflicts.length) throw new ConflictError(`network "${name}" changed meanwhile; retry`);
        if (!r.committed) throw new ApiError(grpc.status.ABORTED, `network "${name}" changed meanwhile; retry`);
        reads.wrote(r.revision);
      });
      return {};
    }),
  };
}
