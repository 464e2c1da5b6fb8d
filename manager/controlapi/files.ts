// What the secrets and configs nouns share (./secrets.ts, ./configs.ts): the
// two are one kind of object, a named value a container gets as a file;
// they differ in who may see the value (a secret's never comes back).
//
// Values are sealed before they reach the store (manager/crypto/values.ts:
// a data key per value, wrapped by the KEK, the object's etcd key as
// associated data); the cache holds them sealed; only the dispatcher opens
// them, for the nodes that run a task using them.
//
// Names are unique among each kind, checked against the cache after a
// fresh read (as networks' names): two managers creating the same name in
// the same instant could both succeed; every later lookup by that name then
// refuses as ambiguous instead of guessing.
import * as grpc from '@grpc/grpc-js';
import type { Config, ContainerSpec, FileReference, Secret, Service, ServiceSpec } from '../../proto/mod';
import { ApiError, invalid } from '../api';
import { openValue, sealValue } from '../crypto/values';
import { newId } from '../ids';
import { checkFileValue, imageRegistry, type FileKind } from '../spec/files';
import { validateFileSpec } from '../spec/objects';
import type { StateCache } from '../state/cache';
import { ConflictError, key, type Store } from '../store/store';
import { retryConflicts, type Ctx } from './common';
import { KekError, type KeyRing } from '../crypto/kek';
import { assertNotRetired } from '../crypto/rewrap';

/** Secrets and configs have the same shape. */
export type FileObject = Secret | Config;

export interface FileNoun {
  kind: FileKind;
  /** The store's kind. */
  stored: 'secrets' | 'configs';
  objects(cache: StateCache): Map<string, FileObject>;
  /** Every use by a container: what its node is sent, what keeps the object from removal. */
  refs(c: ContainerSpec | null | undefined): FileReference[];
  /** The uses a rotation rolls: mounted files (registry credentials only serve pulls and roll nothing). */
  mounted(c: ContainerSpec | null | undefined): FileReference[];
}

export const SECRETS: FileNoun = {
  kind: 'secret',
  stored: 'secrets',
  objects: (c) => c.secrets,
  refs: (c) => [...(c?.secrets ?? []), ...(c?.registryAuth?.id ? [c.registryAuth] : [])],
  mounted: (c) => c?.secrets ?? [],
};
export const CONFIGS: FileNoun = { kind: 'config', stored: 'configs', objects: (c) => c.configs, refs: (c) => c?.configs ?? [], mounted: (c) => c?.configs ?? [] };

/** The label naming the registry a registry-credentials secret is for. */
export const REGISTRY_LABEL = 'convoy.registry';
/** The secret `registry login HOST` keeps: registry-auth-<host, ':' as '_'>. */
export const registrySecretName = (host: string) => `registry-auth-${host.replace(/:/g, '_')}`;

/** The object without its sealed parts: what the Control API returns. */
export function publicFile<T extends FileObject>(o: T): T {
  return { ...o, dataKey: '', data: '' };
}

/** The etcd key a value is sealed to (its associated data). */
export const aadOf = (noun: FileNoun, id: string) => key(noun.stored, id);

/** Refuses to seal under a key a KEK rotation retired (a manager not restarted with the new key first). */
async function sealable(store: Store, kek: KeyRing): Promise<void> {
  try {
    await assertNotRetired(store, kek);
  } catch (e) {
    if (e instanceof KekError) throw new ApiError(grpc.status.FAILED_PRECONDITION, e.message);
    throw e;
  }
}

/** Opens a stored value (the dispatcher, GetConfig). */
export function openFile(kek: KeyRing, noun: FileNoun, o: FileObject): Buffer {
  return openValue(kek, { dataKey: o.dataKey, data: o.data }, aadOf(noun, o.id));
}

/** By exact id, else by name, else by unique id prefix; a name two objects share is refused. */
export function findFile(cache: StateCache, noun: FileNoun, ref: string): FileObject {
  const all = noun.objects(cache);
  const exact = all.get(ref);
  if (exact) return exact;
  const named = [...all.values()].filter((o) => o.spec?.name === ref);
  if (named.length > 1) throw new ApiError(grpc.status.FAILED_PRECONDITION, `${noun.kind} name "${ref}" is ambiguous (${named.map((o) => o.id).join(', ')}): use its id`);
  if (named.length === 1) return named[0];
  const prefixed = ref ? [...all.values()].filter((o) => o.id.startsWith(ref)) : [];
  if (prefixed.length === 1) return prefixed[0];
  throw new ApiError(grpc.status.NOT_FOUND, `${noun.kind} "${ref}" not found`);
}

/** Names of the services whose spec refers to the object. */
export function usersOf(cache: StateCache, noun: FileNoun, id: string): string[] {
  const out: string[] = [];
  for (const s of cache.services.values()) if (noun.refs(s.spec?.container).some((r) => r.id === id)) out.push(s.spec?.name ?? s.id);
  return out.sort();
}

/**
 * Fills in the ids of a validated spec's secret and config references from
 * their names; NOT_FOUND naming the field and the name when one does not
 * exist. Nothing is written by the caller then.
 */
export function resolveFileRefs(cache: StateCache, spec: ServiceSpec): ServiceSpec {
  const c = spec.container;
  if (!c) return spec;
  const resolve = (noun: FileNoun, field: string) =>
    noun.refs(c).map((r, i) => {
      const named = [...noun.objects(cache).values()].filter((o) => o.spec?.name === r.name);
      if (!named.length) throw new ApiError(grpc.status.NOT_FOUND, `spec.container.${field}[${i}].name: ${noun.kind} "${r.name}" not found (create it first: convoy ${noun.kind} create ${r.name} FILE)`);
      if (named.length > 1) throw new ApiError(grpc.status.FAILED_PRECONDITION, `spec.container.${field}[${i}].name: ${noun.kind} name "${r.name}" is ambiguous`);
      return { ...r, id: named[0].id };
    });
  let registryAuth: FileReference | null = null;
  if (c.withRegistryAuth) {
    const host = imageRegistry(c.image);
    const creds = [...cache.secrets.values()].find((s) => s.spec?.labels?.[REGISTRY_LABEL] === host);
    if (!creds) throw new ApiError(grpc.status.FAILED_PRECONDITION, `spec.container.withRegistryAuth: no credentials for registry "${host}" (run convoy registry login ${host})`);
    registryAuth = { id: creds.id, name: creds.spec?.name ?? '', target: '', uid: 0, gid: 0, mode: 0 };
  }
  return { ...spec, container: { ...c, secrets: resolve(SECRETS, 'secrets'), configs: resolve(CONFIGS, 'configs'), registryAuth } };
}

export interface FileOps {
  create(spec: unknown, data: Buffer | null | undefined): Promise<FileObject>;
  get(ref: string): Promise<FileObject>;
  list(): Promise<FileObject[]>;
  remove(ref: string): Promise<void>;
  /** A new version, then every service using it rolls (spec_version + 1). Returns the object and the services rolled. */
  rotate(ref: string, data: Buffer | null | undefined): Promise<{ obj: FileObject; services: string[] }>;
}

export function fileOps(c: Ctx, noun: FileNoun): FileOps {
  const { store, cache, reads, log } = c;
  const checkValue = (data: Buffer | null | undefined): Buffer => {
    const bad = checkFileValue(noun.kind, data);
    if (bad) throw invalid([bad]);
    return Buffer.from(data!);
  };
  const written = async (id: string, rev: number): Promise<FileObject> => {
    await reads.seen(rev);
    const o = noun.objects(cache).get(id);
    if (!o) throw new ApiError(grpc.status.NOT_FOUND, `${noun.kind} ${id} not found`);
    return o;
  };
  return {
    async create(specIn, dataIn) {
      const v = validateFileSpec(noun.kind, specIn);
      if (!v.ok) throw invalid(v.errors);
      const data = checkValue(dataIn);
      await reads.fresh();
      if ([...noun.objects(cache).values()].some((o) => o.spec?.name === v.spec.name)) throw new ApiError(grpc.status.ALREADY_EXISTS, `spec.name: ${noun.kind} "${v.spec.name}" already exists`);
      await sealable(store, c.kek);
      const id = newId();
      const sealed = sealValue(c.kek, data, aadOf(noun, id));
      data.fill(0);
      const obj: FileObject = { id, meta: null, spec: { name: v.spec.name, labels: v.spec.labels }, version: 1, ...sealed, size: dataIn!.length, digest: '' };
      const rev = await store.put(noun.stored, obj, true);
      log.info(`${noun.kind} created`, { [`${noun.kind}.id`]: id, [`${noun.kind}.name`]: v.spec.name });
      return written(id, rev);
    },
    async get(ref) {
      await reads.fresh();
      return findFile(cache, noun, ref);
    },
    async list() {
      await reads.fresh();
      return [...noun.objects(cache).values()].sort((a, b) => (a.spec?.name ?? '').localeCompare(b.spec?.name ?? ''));
    },
    async remove(ref) {
      await reads.fresh();
      const found = findFile(cache, noun, ref);
      const name = found.spec?.name ?? found.id;
      const users = usersOf(cache, noun, found.id);
      if (users.length) throw new ApiError(grpc.status.FAILED_PRECONDITION, `${noun.kind} "${name}" is in use by service(s) ${users.join(', ')}; remove it from them first (convoy service update --${noun.kind}-rm ${name} SERVICE)`);
      await retryConflicts(false, async () => {
        const cur = await store.get<FileObject>(noun.stored, found.id);
        if (!cur) return;
        const r = await store.batch([{ op: 'delete', kind: noun.stored, obj: cur }]);
        if (r.conflicts.length) throw new ConflictError(`${noun.kind} "${name}" changed meanwhile; retry`);
        if (!r.committed) throw new ApiError(grpc.status.ABORTED, `${noun.kind} "${name}" changed meanwhile; retry`);
        reads.wrote(r.revision);
      });
      log.info(`${noun.kind} removed`, { [`${noun.kind}.id`]: found.id, [`${noun.kind}.name`]: name });
    },
    async rotate(ref, dataIn) {
      const data = checkValue(dataIn);
      await reads.fresh();
      const found = findFile(cache, noun, ref);
      await sealable(store, c.kek);
      const next = await store.update<FileObject>(noun.stored, found.id, (cur) => {
        if (!cur) throw new ApiError(grpc.status.NOT_FOUND, `${noun.kind} "${ref}" not found`);
        return { ...cur, version: Number(cur.version) + 1, ...sealValue(c.kek, data, aadOf(noun, cur.id)), size: data.length };
      });
      data.fill(0);
      const obj = await written(found.id, next!.meta!.version);
      const name = obj.spec?.name ?? obj.id;
      // Every service using it rolls through its own update config. The spec
      // does not change (it names the object, not a version): previous_spec
      // becomes the same spec, so an update that fails and rolls back
      // replaces tasks with the same spec again rather than an older one.
      const rolled: string[] = [];
      for (const s of [...cache.services.values()].filter((x) => noun.mounted(x.spec?.container).some((r) => r.id === obj.id))) {
        const upd = await store
          .update<Service>('services', s.id, (cur) => {
            if (!cur || !noun.mounted(cur.spec?.container).some((r) => r.id === obj.id)) return undefined;
            return {
              ...cur,
              previousSpec: cur.spec,
              specVersion: cur.specVersion + 1,
              updateStatus: { state: 'UPDATING', startedAt: Date.now(), completedAt: 0, message: `${noun.kind} "${name}" rotated to version ${obj.version}` },
            };
          })
          .catch((e: unknown) => {
            if (e instanceof ApiError && e.code === grpc.status.NOT_FOUND) return undefined;
            throw e;
          });
        if (upd) {
          reads.wrote(upd.meta?.version ?? 0);
          rolled.push(upd.spec?.name ?? upd.id);
        }
      }
      log.info(`${noun.kind} rotated`, { [`${noun.kind}.id`]: obj.id, [`${noun.kind}.name`]: name, version: Number(obj.version), services: rolled.join(',') });
      return { obj, services: rolled.sort() };
    },
  };
}
