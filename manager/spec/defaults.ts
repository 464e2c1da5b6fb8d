// Service spec defaults, as Docker's where Docker has one. A field is filled
// only when the whole message is absent (proto3 cannot tell "0" from "not
// given" for scalars), except where zero makes no sense (stop grace period,
// ports' protocol).
import type { ContainerSpec, ServiceSpec } from '../../proto/mod';
import { DEFAULT_JOB_HISTORY, DEFAULT_JOB_TIMEZONE, DEFAULT_RESTART_POLICY, DEFAULT_ROLLBACK_CONFIG, DEFAULT_STOP_GRACE_MS, DEFAULT_STOP_SIGNAL, DEFAULT_UPDATE_CONFIG } from '../../proto/defaults';

export { DEFAULT_RESTART_POLICY, DEFAULT_ROLLBACK_CONFIG, DEFAULT_STOP_GRACE_MS, DEFAULT_STOP_SIGNAL, DEFAULT_UPDATE_CONFIG };

function container(c: ContainerSpec | null | undefined): ContainerSpec {
  return {
    image: c?.image ?? '',
    command: c?.command ?? [],
    args: c?.args ?? [],
    env: c?.env ?? [],
    dir: c?.dir ?? '',
    user: c?.user ?? '',
    hostname: c?.hostname ?? '',
    mounts: c?.mounts ?? [],
    stopSignal: c?.stopSignal || DEFAULT_STOP_SIGNAL,
    stopGracePeriodMs: c?.stopGracePeriodMs || DEFAULT_STOP_GRACE_MS,
    healthcheck: c?.healthcheck ?? null,
    labels: c?.labels ?? {},
    capAdd: c?.capAdd ?? [],
    capDrop: c?.capDrop ?? [],
    readOnly: c?.readOnly ?? false,
    hostAccess: c?.hostAccess ?? false,
    secrets: c?.secrets ?? [],
    configs: c?.configs ?? [],
    withRegistryAuth: c?.withRegistryAuth ?? false,
    registryAuth: c?.registryAuth ?? null,
    // Container options (issue 13): absent = Docker's defaults.
    init: c?.init ?? false,
    sysctls: c?.sysctls ?? {},
    ulimits: c?.ulimits ?? [],
    hosts: c?.hosts ?? [],
    dnsConfig: c?.dnsConfig ?? null,
    tty: c?.tty ?? false,
    openStdin: c?.openStdin ?? false,
    privileged: c?.privileged ?? false,
    devices: c?.devices ?? [],
  };
}

/** Job modes get a job part (filled in); other modes keep what was given (validation refuses it). */
function jobDefaults(spec: ServiceSpec): ServiceSpec['job'] {
  const j = spec.job;
  if (!isJobMode(spec.mode) && !j) return null;
  return {
    maxConcurrent: j?.maxConcurrent ?? 0,
    schedule: (j?.schedule ?? '').trim(),
    timezone: j?.timezone || (j?.schedule ? DEFAULT_JOB_TIMEZONE : ''),
    concurrencyPolicy: j?.concurrencyPolicy || 'CONCURRENCY_ALLOW',
    historyLimit: j?.historyLimit || DEFAULT_JOB_HISTORY,
    startingDeadlineMs: j?.startingDeadlineMs ?? 0,
  };
}

export function isJobMode(mode: string | null | undefined): boolean {
  return mode === 'REPLICATED_JOB' || mode === 'GLOBAL_JOB';
}

/** The spec with every default filled; does not validate. */
export function withDefaults(spec: ServiceSpec): ServiceSpec {
  const zero = { nanoCpus: 0, memoryBytes: 0, pids: 0 };
  return {
    name: spec.name ?? '',
    labels: spec.labels ?? {},
    container: container(spec.container),
    resources: {
      limits: { ...zero, ...(spec.resources?.limits ?? {}) },
      reservations: { ...zero, ...(spec.resources?.reservations ?? {}) },
    },
    restart: spec.restart ?? { ...DEFAULT_RESTART_POLICY },
    placement: {
      constraints: spec.placement?.constraints ?? [],
      preferences: spec.placement?.preferences ?? [],
      maxReplicasPerNode: spec.placement?.maxReplicasPerNode ?? 0,
      platforms: spec.placement?.platforms ?? [],
      strategy: spec.placement?.strategy || 'SPREAD',
    },
    mode: spec.mode || 'REPLICATED',
    replicas: spec.mode === 'GLOBAL' || spec.mode === 'GLOBAL_JOB' ? 0 : Number(spec.replicas ?? 0),
    update: spec.update ?? { ...DEFAULT_UPDATE_CONFIG },
    rollback: spec.rollback ?? { ...DEFAULT_ROLLBACK_CONFIG },
    networks: spec.networks ?? [],
    endpoint: {
      mode: spec.endpoint?.mode || 'VIP',
      ports: (spec.endpoint?.ports ?? []).map((p) => ({
        name: p.name ?? '',
        protocol: (p.protocol || 'tcp').toLowerCase(),
        targetPort: p.targetPort,
        publishedPort: p.publishedPort ?? 0,
        publishMode: p.publishMode || 'INGRESS',
      })),
    },
    autoscale: spec.autoscale ?? null,
    networkAliases: (spec.networkAliases ?? []).map((a) => ({ network: a.network ?? '', aliases: a.aliases ?? [] })),
    job: jobDefaults(spec),
  };
}
