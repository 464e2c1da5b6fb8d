// Control API: nodes. A node's session id and lease never leave the
// manager (publicNode); spec changes are read-modify-writes, since the
// leader and the dispatcher write nodes too (status, subnet).
import * as grpc from '@grpc/grpc-js';
import type { ControlHandlers, Node, NodeUsage } from '../../proto/mod';
import { holdsNode } from '../orchestrator/task';
import { auditTarget } from '../auth/authorize';
import { ApiError, invalid } from '../api';
import { validateNodeSpec } from '../spec/objects';
import { ConflictError, UPDATE_ATTEMPTS } from '../store/store';
import { findNode, paged, publicNode, retryConflicts, type Ctx } from './common';

type Handlers = Pick<ControlHandlers, 'ListNodes' | 'GetNode' | 'UpdateNode' | 'RemoveNode'>;

/**
 * A node as ListNodes and GetNode answer it: with what its tasks reserve
 * (the cache's tasks that hold the node, as the scheduler charges them) and
 * use (the node's latest stats sample; sampledAt 0 when there is none).
 */
export function nodeWithUsage(c: Pick<Ctx, 'cache' | 'nodeUsage'>, n: Node): Node {
  let cpu = 0;
  let mem = 0;
  let tasks = 0;
  for (const t of c.cache.tasksOnNode(n.id)) {
    if (!holdsNode(t)) continue;
    const r = t.spec?.resources?.reservations;
    cpu += Number(r?.nanoCpus ?? 0);
    mem += Number(r?.memoryBytes ?? 0);
    tasks++;
  }
  const s = c.nodeUsage?.(n.id);
  const usage: NodeUsage = {
    reservedNanoCpus: cpu,
    reservedMemoryBytes: mem,
    tasks,
    usedNanoCpus: s ? Math.round(s.cpuCores * 1e9) : 0,
    usedMemoryBytes: s ? Math.round(s.memoryBytes) : 0,
    sampledAt: s?.receivedAt ?? 0,
  };
  return { ...publicNode(n), usage };
}

export function nodeHandlers(c: Ctx): Handlers {
  const { store, cache, reads, unary, observer } = c;
  const nodeEvent = (action: 'drained' | 'paused' | 'active' | 'removed', n: Node) =>
    observer.event({ type: 'node', action, time: Date.now(), source: c.source, nodeId: n.id, hostname: n.description?.hostname ?? '' });

  return {
    ListNodes: unary('ListNodes', async (req: { role: string; pageSize: number; pageToken: string }) => {
      const [, leader] = await Promise.all([reads.fresh(), store.leader()]);
      const page = paged(cache.nodes.values(), req, (n) => [n.description?.hostname ?? '', n.id]);
      return { nodes: page.items.map((n) => nodeWithUsage(c, n)), leader: leader ?? '', nextPageToken: page.nextPageToken };
    }),
    GetNode: unary('GetNode', async (req: { node: string }) => {
      await reads.fresh();
      return { node: nodeWithUsage(c, findNode(cache, req.node)) };
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
            const v = validateNodeSpec(spec);
            if (!v.ok) throw invalid(v.errors);
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
    RemoveNode: unary('RemoveNode', async (req: { node: string; force: boolean }, _md, call) => {
      await reads.fresh();
      const found = findNode(cache, req.node);
      auditTarget(call, { id: found.id, name: found.description?.hostname });
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
      // A removed node's certificate is refused from now on (a host that comes back joins anew, with a token).
      await c.ca?.revoke(n.id);
      nodeEvent('removed', n);
      return {};
    }),
  };
}
