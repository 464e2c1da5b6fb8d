// `stack deploy` as a diff against what the cluster holds for the stack
// (every object carries com.docker.stack.namespace=STACK): external
// networks, secrets and configs are checked and name clashes refused first,
// with reads only, so a refusal writes nothing; then missing networks,
// secrets and configs are created, missing services created, and a service
// updated only when its spec differs from the stored one (compared with the
// manager's defaults filled on both sides), so nothing else restarts.
// `--prune` removes the stack's services the files no longer name.
//
// depends_on orders the first deployment of a stack: services are created in
// dependency order, each after its dependencies reach their condition
// (started: the tasks run; healthy: they report healthy; completed
// successfully: they exited 0). Redeploys do not wait, as the services
// already exist.
import type { Service, ServiceSpec, Task } from '../../proto/mod';
import type { ControlApi } from '../client';
import { withDefaults } from '../../manager/spec/defaults';
import { NAMESPACE_LABEL, type DependsCondition, type PlannedService, type StackPlan } from './convert';
import { stackError, StackError } from './tree';

/** The secrets/configs RPCs of the identity work (issue 11), when the manager has them. */
export interface FileObjectApi {
  listSecrets(req: Record<string, never>): Promise<{ secrets: { secret: { id: string; spec: { name: string; labels: Record<string, string> } | null } | null }[] }>;
  createSecret(req: { spec: { name: string; labels: Record<string, string> }; data: Buffer }): Promise<unknown>;
  removeSecret(req: { secret: string }): Promise<unknown>;
  listConfigs(req: Record<string, never>): Promise<{ configs: { config: { id: string; spec: { name: string; labels: Record<string, string> } | null } | null }[] }>;
  createConfig(req: { spec: { name: string; labels: Record<string, string> }; data: Buffer }): Promise<unknown>;
  removeConfig(req: { config: string }): Promise<unknown>;
}

export type StackApi = Pick<ControlApi, 'listServices' | 'createService' | 'updateService' | 'removeService' | 'listNetworks' | 'createNetwork' | 'removeNetwork' | 'listTasks'> &
  Partial<FileObjectApi>;

/** How long one depends_on condition may take on a first deployment. */
export const DEPENDS_ON_TIMEOUT_MS = 5 * 60_000;
/** How often a condition is checked (one ListTasks per dependency). */
export const DEPENDS_ON_POLL_MS = 500;

export type ResolveMode = 'always' | 'changed' | 'never';

export interface DeployOptions {
  prune?: boolean;
  /**
   * --resolve-image, as Docker's: always (pin every tag to its digest at the
   * registry), changed (only new services and changed images), never.
   * Default never here; the CLI's default is always.
   */
  resolveMode?: ResolveMode;
  /** image → image@digest, or undefined when the registry cannot tell (the image stays as written). */
  resolveImage?(image: string): Promise<string | undefined>;
  warn?(s: string): void;
  out(s: string): void;
  /** Injected in tests. */
  sleep?(ms: number): Promise<void>;
  now?(): number;
  timeoutMs?: number;
}

export interface DeployResult {
  created: string[];
  updated: string[];
  unchanged: string[];
  removed: string[];
  networksCreated: string[];
  /** The services created or updated, as the writes returned them (what `stack deploy` then waits for). */
  written: Service[];
}

/** A spec as stored: the manager's defaults filled, then every proto3 zero value dropped and keys sorted, for comparison. */
export function canonicalSpec(spec: ServiceSpec): string {
  const strip = (v: unknown, key = ''): unknown => {
    if (Array.isArray(v)) {
      const a = v.map((x) => strip(x)).filter((x) => x !== undefined);
      return a.length ? a : undefined;
    }
    if (v && typeof v === 'object' && !Buffer.isBuffer(v)) {
      const o: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        // The manager fills secret/config ids from their names.
        if (k === 'id' && (key === 'ref')) continue;
        const x = strip((v as Record<string, unknown>)[k], k === 'secrets' || k === 'configs' ? 'refs' : key === 'refs' ? 'ref' : '');
        if (x !== undefined) o[k] = x;
      }
      return Object.keys(o).length ? o : undefined;
    }
    if (v === null || v === undefined || v === '' || v === 0 || v === false) return undefined;
    return v;
  };
  const filled = withDefaults(spec);
  // Stored arrays of refs carry ids; mark them so the ids are skipped.
  const c = filled.container as Record<string, unknown> | null;
  if (c) for (const k of ['secrets', 'configs']) if (Array.isArray(c[k])) c[k] = (c[k] as Record<string, unknown>[]).map((r) => ({ ...r, id: undefined }));
  return JSON.stringify(strip(filled) ?? {});
}

/** The spec to send: the plan's, with what is not a compose key kept from the stored service (autoscale and the replicas it sets). */
export function desiredSpec(planned: PlannedService, stored: Service | undefined): ServiceSpec {
  const spec = structuredClone(planned.spec) as ServiceSpec & { container: Record<string, unknown> };
  // The manager fills in ids from the names at create/update.
  if (planned.secrets.length) spec.container.secrets = planned.secrets.map((r) => ({ id: '', ...r }));
  if (planned.configs.length) spec.container.configs = planned.configs.map((r) => ({ id: '', ...r }));
  const as = stored?.spec?.autoscale;
  if (as?.enabled) {
    spec.autoscale = as;
    spec.replicas = stored!.spec!.replicas;
  }
  return spec;
}

function labelled(labels: Record<string, string> | null | undefined, stack: string): boolean {
  return labels?.[NAMESPACE_LABEL] === stack;
}

/** Checks and reads everything the deployment needs; throws before any write. */
async function preflight(api: StackApi, plan: StackPlan) {
  const [netsR, svcsR] = await Promise.all([api.listNetworks({}), api.listServices({ name: '', labels: {} })]);
  const networks = netsR.networks;
  const byName = new Map(networks.map((n) => [n.spec?.name ?? '', n]));
  for (const n of plan.networks) {
    const have = byName.get(n.name);
    if (n.external) {
      if (!have) throw stackError(n, `networks.${n.key}`, `external network ${JSON.stringify(n.name)} not found (create it first: convoy network create ${n.name})`);
    } else if (have && !labelled(have.spec?.labels, plan.stack))
      throw stackError(n, `networks.${n.key}`, `network ${JSON.stringify(n.name)} exists and is not part of stack ${plan.stack}`);
  }
  const allServices = svcsR.services.map((e) => e.service as Service);
  const existing = new Map<string, Service>();
  for (const s of allServices) {
    const name = s.spec?.name ?? '';
    const planned = plan.services.find((p) => p.name === name);
    if (labelled(s.spec?.labels, plan.stack)) existing.set(name, s);
    else if (planned) throw stackError(planned, `services.${planned.key}`, `service ${JSON.stringify(name)} exists and is not part of stack ${plan.stack}`);
  }
  // An ingress port another service (outside the stack) publishes: refused now, not halfway through.
  for (const s of plan.services)
    for (const port of s.spec.endpoint?.ports ?? []) {
      if (port.publishMode !== 'INGRESS' || !port.publishedPort) continue;
      const holder = allServices.find(
        (o) => o.spec?.name !== s.name && [...(o.spec?.endpoint?.ports ?? []), ...(o.endpoint?.ports ?? [])].some((q) => q.publishMode !== 'HOST' && q.publishedPort === port.publishedPort && (q.protocol || 'tcp') === port.protocol),
      );
      if (holder && !(labelled(holder.spec?.labels, plan.stack) && plan.services.every((p) => p.name !== holder.spec?.name)))
        throw stackError(s, `services.${s.key}.ports`, `port ${port.publishedPort}/${port.protocol} is already published by service ${JSON.stringify(holder.spec?.name ?? holder.id)}`);
    }
  const files: { secrets: Map<string, string>; configs: Map<string, string> } = { secrets: new Map(), configs: new Map() };
  for (const kind of ['secrets', 'configs'] as const) {
    const wanted = plan[kind];
    const used = plan.services.some((s) => s[kind].length);
    if (!wanted.length && !used) continue;
    const list = kind === 'secrets' ? api.listSecrets?.bind(api) : api.listConfigs?.bind(api);
    if (!list) {
      const first = wanted[0] ?? plan.services.find((s) => s[kind].length);
      throw stackError(first, kind, `not supported yet: this manager has no ${kind} API`);
    }
    const r = (await (list as (req: Record<string, never>) => Promise<unknown>)({})) as { secrets?: { secret: { id: string; spec: { name: string; labels: Record<string, string> } | null } | null }[]; configs?: { config: { id: string; spec: { name: string; labels: Record<string, string> } | null } | null }[] };
    const have = new Map<string, Record<string, string>>();
    for (const e of r.secrets ?? []) if (e.secret?.spec) have.set(e.secret.spec.name, e.secret.spec.labels ?? {});
    for (const e of r.configs ?? []) if (e.config?.spec) have.set(e.config.spec.name, e.config.spec.labels ?? {});
    for (const o of wanted) {
      const lbl = have.get(o.name);
      if (o.external && !lbl) throw stackError(o, `${kind}.${o.key}`, `external ${kind === 'secrets' ? 'secret' : 'config'} ${JSON.stringify(o.name)} not found`);
      if (!o.external && lbl && !labelled(lbl, plan.stack)) throw stackError(o, `${kind}.${o.key}`, `${JSON.stringify(o.name)} exists and is not part of stack ${plan.stack}`);
      files[kind].set(o.name, lbl ? 'exists' : 'missing');
    }
  }
  return { byName, existing, files };
}

function describeWait(c: DependsCondition): string {
  return c === 'service_healthy' ? 'healthy' : c === 'service_completed_successfully' ? 'completed successfully' : 'started';
}

/** Whether the service's tasks meet the condition: true, false (not yet), or a reason it never will. */
export function conditionMet(spec: ServiceSpec, tasks: Task[], c: DependsCondition): boolean | string {
  const current = tasks.filter((t) => t.desiredState === 'RUNNING' || (c === 'service_completed_successfully' && t.desiredState !== 'REMOVE'));
  const want = spec.mode === 'GLOBAL' || spec.mode === 'GLOBAL_JOB' ? Math.max(1, current.length) : Number(spec.replicas);
  if (c === 'service_completed_successfully') {
    const failed = tasks.find((t) => (t.status?.state === 'FAILED' || (t.status?.state === 'COMPLETE' && t.status.exitCode !== 0)) && t.desiredState !== 'RUNNING');
    const done = tasks.filter((t) => t.status?.state === 'COMPLETE' && t.status.exitCode === 0);
    if (done.length >= want) return true;
    if (failed && spec.restart?.condition === 'RESTART_NONE') return `a task ended with exit code ${failed.status?.exitCode ?? '?'}`;
    return false;
  }
  const running = current.filter((t) => t.status?.state === 'RUNNING');
  if (c === 'service_started') return running.length >= want && want > 0;
  if (running.length && running.every((t) => t.status?.health === 'none')) return 'it has no health check (service_healthy needs one)';
  return running.filter((t) => t.status?.health === 'healthy').length >= want && want > 0;
}

async function waitFor(api: StackApi, svc: Service, c: DependsCondition, o: DeployOptions): Promise<void> {
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = o.now ?? Date.now;
  const deadline = now() + (o.timeoutMs ?? DEPENDS_ON_TIMEOUT_MS);
  const name = svc.spec?.name ?? svc.id;
  o.out(`Waiting for service ${name} to be ${describeWait(c)}\n`);
  for (;;) {
    const r = await api.listTasks({ service: svc.id, node: '', states: [], desiredStates: [], currentOnly: false });
    const met = conditionMet(svc.spec as ServiceSpec, r.tasks, c);
    if (met === true) return;
    if (typeof met === 'string') throw new StackError(`service ${name} cannot become ${describeWait(c)}: ${met}`);
    if (now() > deadline) throw new StackError(`service ${name} did not become ${describeWait(c)} within ${Math.round((o.timeoutMs ?? DEPENDS_ON_TIMEOUT_MS) / 1000)}s`);
    await sleep(DEPENDS_ON_POLL_MS);
  }
}

/** "reg/x:1@sha256:..." → "reg/x:1". */
export function withoutDigest(image: string): string {
  const at = image.indexOf('@');
  return at < 0 ? image : image.slice(0, at);
}

/**
 * The image each service is deployed with. A pinned image (with a digest)
 * stays; `never` leaves tags as written; `changed` keeps the stored pin of an
 * image the file did not change; a failed lookup keeps the stored pin too (a
 * registry hiccup must not roll a service), else the image as written, with
 * Docker's warning. One lookup per distinct image.
 */
async function pinImages(plan: StackPlan, existing: Map<string, Service>, o: DeployOptions): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const mode = o.resolveMode ?? 'never';
  if (mode === 'never' || !o.resolveImage) return out;
  const cache = new Map<string, Promise<string | undefined>>();
  const warned = new Set<string>();
  for (const s of plan.services) {
    const written = s.spec.container!.image;
    if (written.includes('@')) continue;
    const storedImage = existing.get(s.name)?.spec?.container?.image ?? '';
    const keepStored = storedImage.includes('@') && withoutDigest(storedImage) === written;
    if (mode === 'changed' && keepStored) {
      out.set(s.name, storedImage);
      continue;
    }
    if (!cache.has(written)) cache.set(written, o.resolveImage(written).catch(() => undefined));
    const pinned = await cache.get(written)!;
    if (pinned) out.set(s.name, pinned);
    else if (keepStored) out.set(s.name, storedImage);
    else if (!warned.has(written)) {
      warned.add(written);
      o.warn?.(`image ${written} could not be accessed on a registry to record its digest: each node will access it independently, possibly running different versions of the image`);
    }
  }
  return out;
}

export async function deployStack(api: StackApi, plan: StackPlan, o: DeployOptions): Promise<DeployResult> {
  const pre = await preflight(api, plan);
  const result: DeployResult = { created: [], updated: [], unchanged: [], removed: [], networksCreated: [], written: [] };
  const firstDeploy = pre.existing.size === 0;

  for (const n of plan.networks) {
    if (n.external || pre.byName.has(n.name)) continue;
    o.out(`Creating network ${n.name}\n`);
    await api.createNetwork({ spec: n.spec });
    result.networksCreated.push(n.name);
  }
  for (const kind of ['secrets', 'configs'] as const) {
    for (const f of plan[kind]) {
      if (f.external || pre.files[kind].get(f.name) === 'exists') continue;
      o.out(`Creating ${kind === 'secrets' ? 'secret' : 'config'} ${f.name}\n`);
      const req = { spec: { name: f.name, labels: f.labels }, data: f.data ?? Buffer.alloc(0) };
      if (kind === 'secrets') await api.createSecret!(req);
      else await api.createConfig!(req);
    }
  }

  const images = await pinImages(plan, pre.existing, o);
  const deployed = new Map<string, Service>();
  for (const s of plan.services) {
    const stored = pre.existing.get(s.name);
    const spec = desiredSpec(s, stored);
    spec.container!.image = images.get(s.name) ?? spec.container!.image;
    if (stored) {
      if (canonicalSpec(stored.spec as ServiceSpec) === canonicalSpec(spec)) {
        result.unchanged.push(s.name);
        deployed.set(s.key, stored);
        continue;
      }
      o.out(`Updating service ${s.name} (id: ${stored.id})\n`);
      const r = await api.updateService({ service: stored.id, version: stored.meta?.version ?? 0, spec, force: false });
      result.updated.push(s.name);
      if (r.service) result.written.push(r.service as Service);
      deployed.set(s.key, r.service as Service);
      continue;
    }
    if (firstDeploy) for (const d of s.dependsOn) await waitFor(api, deployed.get(d.service)!, d.condition, o);
    o.out(`Creating service ${s.name}\n`);
    const r = await api.createService({ spec });
    result.created.push(s.name);
    if (r.service) result.written.push(r.service as Service);
    deployed.set(s.key, r.service as Service);
  }

  if (o.prune) {
    const keep = new Set(plan.services.map((s) => s.name));
    for (const [name, svc] of pre.existing) {
      if (keep.has(name)) continue;
      o.out(`Removing service ${name}\n`);
      await api.removeService({ service: svc.id });
      result.removed.push(name);
    }
  }
  return result;
}

/** `stack rm`: every service, network, secret and config labelled with the stack, and nothing else. */
export async function removeStack(api: StackApi, stack: string, out: (s: string) => void): Promise<{ removed: string[]; failed: string[] }> {
  const removed: string[] = [];
  const failed: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    out(`Removing ${what}\n`);
    try {
      await fn();
      removed.push(what);
    } catch (e) {
      failed.push(`${what}: ${(e as { details?: string }).details ?? (e as Error).message}`);
    }
  };
  const svcs = await api.listServices({ name: '', labels: { [NAMESPACE_LABEL]: stack } });
  for (const e of svcs.services) if (labelled(e.service?.spec?.labels, stack)) await attempt(`service ${e.service!.spec!.name}`, () => api.removeService({ service: e.service!.id }));
  if (api.listSecrets && api.removeSecret) {
    const r = await api.listSecrets({});
    for (const e of r.secrets) if (e.secret?.spec && labelled(e.secret.spec.labels, stack)) await attempt(`secret ${e.secret.spec.name}`, () => api.removeSecret!({ secret: e.secret!.id }));
  }
  if (api.listConfigs && api.removeConfig) {
    const r = await api.listConfigs({});
    for (const e of r.configs) if (e.config?.spec && labelled(e.config.spec.labels, stack)) await attempt(`config ${e.config.spec.name}`, () => api.removeConfig!({ config: e.config!.id }));
  }
  const nets = await api.listNetworks({});
  for (const n of nets.networks) if (labelled(n.spec?.labels, stack)) await attempt(`network ${n.spec!.name}`, () => api.removeNetwork({ network: n.id }));
  return { removed, failed };
}
