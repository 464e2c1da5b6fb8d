import { strict as assert } from 'node:assert';
import type { Node, Service, Task } from '../../proto/mod';
import type { ClusterSnapshot } from '../state/snapshot';
import { ManagerMetrics } from './metrics';

function snap(): ClusterSnapshot {
  const svc = { id: 's1', spec: { name: 'web', mode: 'REPLICATED', replicas: 3 } } as unknown as Service;
  const t = (id: string, state: string, desired = 'RUNNING') => ({ id, serviceId: 's1', serviceName: 'web', desiredState: desired, status: { state } }) as unknown as Task;
  const n = (id: string, state: string, availability: string) => ({ id, status: { state }, spec: { availability } }) as unknown as Node;
  return {
    revision: 1,
    now: 0,
    cluster: {} as ClusterSnapshot['cluster'],
    services: new Map([['s1', svc]]),
    tasks: new Map([t('a', 'RUNNING'), t('b', 'RUNNING'), t('c', 'PENDING'), t('d', 'FAILED', 'SHUTDOWN')].map((x) => [x.id, x])),
    nodes: new Map([n('n1', 'READY', 'ACTIVE'), n('n2', 'READY', 'DRAIN'), n('n3', 'DOWN', 'ACTIVE')].map((x) => [x.id, x])),
    networks: new Map(),
  };
}

describe('manager metrics', () => {
  it('exports nodes, tasks and desired vs running from the leader snapshot, and clears them on losing the lead', async () => {
    const m = new ManagerMetrics('m0');
    m.leader(true);
    m.state(snap());
    m.refresh();
    m.controlRequests.inc({ method: 'CreateService', code: 'OK' });
    const text = await m.registry.metrics();
    assert.match(text, /^convoy_nodes\{state="READY",availability="ACTIVE",manager="m0"\} 1$/m);
    assert.match(text, /^convoy_nodes\{state="READY",availability="DRAIN",manager="m0"\} 1$/m);
    assert.match(text, /^convoy_tasks\{service="web",state="RUNNING",manager="m0"\} 2$/m);
    assert.match(text, /^convoy_service_replicas_desired\{service="web",manager="m0"\} 3$/m);
    assert.match(text, /^convoy_service_replicas_running\{service="web",manager="m0"\} 2$/m);
    assert.match(text, /^convoy_manager_leader\{manager="m0"\} 1$/m);
    assert.match(text, /^convoy_control_requests_total\{method="CreateService",code="OK",manager="m0"\} 1$/m);
    m.leader(false);
    const after = await m.registry.metrics();
    assert.doesNotMatch(after, /^convoy_tasks\{/m);
    assert.match(after, /^convoy_manager_leader\{manager="m0"\} 0$/m);
  });
});
