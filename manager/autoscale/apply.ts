// The autoscaler's decisions as a step of the reconcile: its replicas go
// into the working copy before the orchestrators run, so they act on them in
// the same tick. The decisions themselves come from the Autoscaler (hooks.ts),
// which the leader asks before the tick (it keeps its own sample history).
import type { ScaleDecision } from '../hooks';
import type { Working } from '../orchestrator/working';

/** Applies the decisions that still change something; returns the ids of the services changed. */
export function applyScale(w: Working, decisions: readonly ScaleDecision[]): string[] {
  const changed: string[] = [];
  for (const d of decisions) {
    const s = w.services.get(d.serviceId);
    if (!s?.spec || Number(s.spec.replicas) === d.to) continue;
    w.updateService({ ...s, spec: { ...s.spec, replicas: d.to } });
    changed.push(s.id);
  }
  return changed;
}
