// Control API: nodes. A node's session id and lease never leave the
// manager (publicNode); spec changes are read-modify-writes, since the
// leader and the dispatcher write nodes too (status, subnet).
import * as grpc from '@grpc/grpc-js';
import type { ControlHandlers, Node } from '../../proto/mod';
import { ApiError } from '../api';
import { ConflictError, UPDATE_ATTEMPTS } from '../store/store';
import { findNode, publicNode, retryConflicts, type Ctx } from './common';

type Handlers = Pick<ControlHandlers, 'ListNodes' | 'GetNode' | 'UpdateNode' | 'RemoveNode'>;

/** Longest label key and value a node accepts (as Docker's). */
const MAX_LABEL_KEY = 128;
const MAX_LABEL_VALUE = 4096;

export function nodeHandlers(c: Ctx): Handlers {
  const { store, cache, reads, unary, observer } = c;
  const nodeEvent = (action: 'drained' | 'paused' | 'active' | 'removed', n: Node) =>
    observer.event({ type: 'node', action, time: Date.now(), source: c.source, nodeId: n.id, hostname: n.description?.hostname ?? '' });

  return {
    ListNodes: unary('ListNodes', async () => {
      const [, leader] = await Promise.all([reads.fresh(), store.leader()]);
      return { nodes: [...cache.nodes.values()].map(publicNode), leader: leader ?? '' };
    }),
    GetNode: unary('GetNode', async (req: { node: string }) => {
      await reads.fresh();
      return { node: publicNode(findNode(cache, req.node)) };
    }),
    UpdateNode: unary('UpdateNode', async (req: { node: string; version: number; spec: Node['spec'] }) => {
      if (!req.spec) throw new ApiError(grpc.status.INVALID_ARGUMENT, 'spec: missing');
      await reads.fresh();
      const found = findNode(cache, req.node);
      // A caller that pins a version gets ABORTED when the node moved on; one that does not gets
      // its spec applied to the current node, retried when another write lands in between.
      const pinned = !!req.version;
      const reqSpec = req.spec;
      let before: Node | undefined;
      const next = await store
        .update<Node>(
          'nodes',
          found.id,
          (n) => {
            if (!n) throw new ApiError(grpc.status.NOT_FOUND, `node "${req.node}" not found`);
            if (pinned && req.version !== n.meta?.version) throw new ApiError(grpc.status.ABORTED, `node changed since version ${req.version}; retry`);
            const spec = { ...n.spec!, ...reqSpec, labels: reqSpec.labels ?? n.spec?.labels ?? {} };
            for (const [k, v] of Object.entries(spec.labels)) {
              if (!k || k.length > MAX_LABEL_KEY) throw new ApiError(grpc.status.INVALID_ARGUMENT, `spec.labels["${k.slice(0, 32)}"]: key must be 1..${MAX_LABEL_KEY} characters`);
              if (String(v).length > MAX_LABEL_VALUE) throw new ApiError(grpc.status.INVALID_ARGUMENT, `spec.labels["${k.slice(0, 32)}"]: value longer than ${MAX_LABEL_VALUE} bytes`);
            }
            before = n;
            return { ...n, spec };
          },
          pinned ? 1 : UPDATE_ATTEMPTS,
        )
        .catch((e: unknown) => {
          if (pinned && e instanceof ConflictError) throw new ApiError(grpc.status.ABORTED, `node changed since version ${req.version}; retry`);
          throw e;
        });
      await reads.seen(next!.meta!.version);
      const availability = next!.spec?.availability;
      if (availability !== before?.spec?.availability) nodeEvent(availability === 'DRAIN' ? 'drained' : availability === 'PAUSE' ? 'paused' : 'active', next!);
      return { node: publicNode(cache.nodes.get(found.id) ?? next!) };
    }),
    RemoveNode: unary('RemoveNode', async (req: { node: string; force: boolean }) => {
      await reads.fresh();
      const found = findNode(cache, req.node);
      const n = await retryConflicts(false, async () => {
        const cur = await store.get<Node>('nodes', found.id);
        if (!cur) throw new ApiError(grpc.status.NOT_FOUND, `node "${req.node}" not found`);
        if (cur.status?.state === 'NODE_READY' && !req.force) throw new ApiError(grpc.status.FAILED_PRECONDITION, `node ${cur.id} is up: drain it and stop its agent, or use --force`);
        const r = await store.batch([{ op: 'delete', kind: 'nodes', obj: cur }]);
        if (r.conflicts.length) throw new ConflictError(`node ${cur.id} changed meanwhile; retry`);
        if (!r.committed) throw new ApiError(grpc.status.ABORTED, `node ${cur.id} changed meanwhile; retry`);
        reads.wrote(r.revision);
        return cur;
      });
      nodeEvent('removed', n);
      return {};
    }),
  };
}
