// The content-addressed image store under the agent's state dir:
//
//   <stateDir>/layers/<diffid hex>/diff/     one unpacked layer (overlay lowerdir)
//   <stateDir>/layers/<diffid hex>/meta.json  {diffId, digest, size, mediaType}
//   <stateDir>/images/<sha256 of ref>.json    one pulled reference: manifest digest, config, layer list
//   <stateDir>/tmp/                           downloads and unpacks in progress
//
// Layers are keyed by their uncompressed digest (diff id) so that every image
// made on the same base shares the same directories. A layer is downloaded to
// tmp/, checked against its digest, unpacked into tmp/, checked against its
// diff id, then renamed into place: a failed or refused layer leaves nothing.
//
// Everything a registry sends is bounded (ImageLimits): manifests and configs
// by size, layers by their descriptor's size while they download and by the
// unpacker's caps while they unpack. The store's directories are 0700: a
// layer's setuid binaries and device nodes must not be reachable by the
// host's unprivileged users (docs/runtime.md, "Unpacking layers safely").
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { nullLogger, type Logger } from '../../../common/logger';
import { runFixup } from '../native';
import { hostArch, MEDIA, type Descriptor, type ImageConfig, type ImageIndex, type Manifest } from './oci';
import { formatReference, InvalidReferenceError, manifestRef, parseReference, type ImageReference } from './reference';
import { checkSize, ImageError, RegistryClient, sha256, type RegistryOptions } from './registry';
import { DEFAULT_MAX_CONFIG_BYTES, DEFAULT_MAX_LAYER_BYTES, DEFAULT_MAX_MANIFEST_BYTES, type ImageLimits } from './limits';
import { encodeFixups, extractLayer, TarError, type ExtractOptions, type FixupOp } from './tar';

export * from './limits';

export interface ImageRecord {
  /** Canonical reference as pulled ("127.0.0.1:5000/convoy-test/busybox:1"). */
  ref: string;
  manifestDigest: string;
  configDigest: string;
  config: ImageConfig;
  /** Diff ids, bottom layer first. */
  layers: string[];
  /** Compressed size of each layer as listed in the manifest. */
  layerSizes: number[];
  pulledAt: string;
}

export interface StoreCounters {
  /** Every byte received from registries: manifests, configs, layers. */
  bytesPulled: number;
  /** Compressed layer bytes received. */
  layerBytesPulled: number;
  layersPulled: number;
  /** Layers found already unpacked and reused. */
  layersReused: number;
}

export interface ImageStoreOptions {
  stateDir: string;
  registry?: RegistryOptions;
  /** The native helper, for whiteouts/device nodes/xattrs; a layer needing it fails without. */
  helperPath?: string;
  logger?: Logger;
  /** Layers downloaded at once per pull. */
  layerConcurrency?: number;
  limits?: ImageLimits;
}

export const DEFAULT_LAYER_CONCURRENCY = 3;
/** Mode of the store's directories (and the runtime's): root only. */
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Creates `dir` (and its parents) and makes it 0700 even when it already
 * existed with another mode (a state dir made by an older version).
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await fsp.chmod(dir, PRIVATE_DIR_MODE);
}

/**
 * Unpacks an uncompressed layer tar into the empty directory `dir`, then
 * lets the native helper make what Node cannot (whiteouts, device nodes,
 * xattrs). Refusals are TarErrors naming the entry (the helper's name the path).
 */
export async function unpackLayer(source: AsyncIterable<Buffer>, dir: string, opts: ExtractOptions & { helperPath?: string }): Promise<FixupOp[]> {
  const ops = await extractLayer(source, dir, { ...opts, helperTimes: true });
  if (ops.length) {
    if (!opts.helperPath) throw new TarError(`the layer needs the native helper (whiteouts, devices or xattrs)`);
    try {
      await runFixup(opts.helperPath, dir, encodeFixups(ops));
    } catch (e) {
      throw new TarError(`the native helper refused the layer: ${e instanceof Error ? e.message : String(e)}`, undefined, e);
    }
  }
  return ops;
}

function hexOf(digest: string): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw new ImageError(`unsupported digest ${digest}`, 'invalid');
  return m[1];
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}

export class ImageStore {
  readonly layersRoot: string;
  private readonly imagesDir: string;
  private readonly tmpDir: string;
  readonly client: RegistryClient;
  private readonly log: Logger;
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly pulls = new Map<string, Promise<ImageRecord>>();
  readonly counters: StoreCounters = { bytesPulled: 0, layerBytesPulled: 0, layersPulled: 0, layersReused: 0 };

  constructor(private readonly opts: ImageStoreOptions) {
    this.layersRoot = path.join(opts.stateDir, 'layers');
    this.imagesDir = path.join(opts.stateDir, 'images');
    this.tmpDir = path.join(opts.stateDir, 'tmp');
    this.client = new RegistryClient(opts.registry);
    this.log = opts.logger ?? nullLogger;
  }

  /** The overlay lowerdir of a layer, relative to layersRoot (short paths fit more layers in one mount). */
  layerRelDir(diffId: string): string {
    return `${hexOf(diffId)}/diff`;
  }

  layerDir(diffId: string): string {
    return path.join(this.layersRoot, this.layerRelDir(diffId));
  }

  private recordPath(ref: string): string {
    return path.join(this.imagesDir, createHash('sha256').update(ref).digest('hex') + '.json');
  }

  static canonical(ref: string): ImageReference {
    try {
      return parseReference(ref);
    } catch (e) {
      if (e instanceof InvalidReferenceError) throw new ImageError(e.message, 'invalid', e);
      throw e;
    }
  }

  async get(ref: string): Promise<ImageRecord | undefined> {
    const r = ImageStore.canonical(ref);
    try {
      return JSON.parse(await fsp.readFile(this.recordPath(formatReference(r)), 'utf8')) as ImageRecord;
    } catch {
      return undefined;
    }
  }

  async listImages(): Promise<ImageRecord[]> {
    const out: ImageRecord[] = [];
    for (const f of await fsp.readdir(this.imagesDir).catch(() => [] as string[])) {
      if (!f.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(await fsp.readFile(path.join(this.imagesDir, f), 'utf8')) as ImageRecord);
      } catch {
        // half-written record: ignore
      }
    }
    return out;
  }

  /**
   * Pulls `ref` unless it is pinned by digest and already here. Concurrent
   * pulls of the same reference share one operation; layers already unpacked
   * are not downloaded again.
   */
  pull(ref: string): Promise<ImageRecord> {
    const r = ImageStore.canonical(ref);
    const key = formatReference(r);
    let p = this.pulls.get(key);
    if (!p) {
      p = this.doPull(r).finally(() => this.pulls.delete(key));
      this.pulls.set(key, p);
    }
    return p;
  }

  private async doPull(r: ImageReference): Promise<ImageRecord> {
    const key = formatReference(r);
    // here rather than when first used: a state dir of an older version (0755) is tightened too
    for (const d of [this.layersRoot, this.imagesDir, this.tmpDir]) await ensurePrivateDir(d);
    if (r.digest) {
      const have = await this.get(key);
      if (have && have.manifestDigest === r.digest && (await this.hasLayers(have))) return have;
    }
    const lim = this.opts.limits ?? {};
    const maxManifest = lim.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    let fetched = await this.client.getManifest(r, manifestRef(r), { maxBytes: maxManifest });
    this.counters.bytesPulled += fetched.body.length;
    let doc = this.parseJson<Manifest & ImageIndex>(fetched.body, `manifest of ${key}`);
    const type = fetched.mediaType || doc.mediaType || '';
    if (type === MEDIA.ociIndex || type === MEDIA.dockerManifestList || (Array.isArray(doc.manifests) && !doc.config)) {
      const chosen = pickPlatform(doc.manifests ?? []);
      if (!chosen) throw new ImageError(`image ${key} has no variant for linux/${hostArch()}`, 'not-found');
      fetched = await this.client.getManifest(r, chosen.digest, { maxBytes: maxManifest, size: descriptorSize(chosen, `manifest ${chosen.digest} of ${key}`) });
      this.counters.bytesPulled += fetched.body.length;
      doc = this.parseJson<Manifest & ImageIndex>(fetched.body, `manifest of ${key}`);
    }
    if (doc.schemaVersion !== 2 || !doc.config || !Array.isArray(doc.layers)) {
      throw new ImageError(`image ${key}: unsupported manifest (${fetched.mediaType || 'schema ' + doc.schemaVersion})`, 'invalid');
    }
    const configBody = await this.client.getBlobBuffer(r, doc.config.digest, {
      maxBytes: lim.maxConfigBytes ?? DEFAULT_MAX_CONFIG_BYTES,
      size: descriptorSize(doc.config, `config of ${key}`),
    });
    this.counters.bytesPulled += configBody.length;
    const config = this.parseJson<ImageConfig>(configBody, `config of ${key}`);
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== doc.layers.length) {
      throw new ImageError(`image ${key}: ${doc.layers.length} layers but ${diffIds.length} diff ids in its config`, 'invalid');
    }
    const queue = doc.layers.map((d, i) => ({ d, diffId: diffIds[i] }));
    const workers = Array.from({ length: Math.min(this.opts.layerConcurrency ?? DEFAULT_LAYER_CONCURRENCY, queue.length) }, async () => {
      for (let job = queue.shift(); job; job = queue.shift()) await this.ensureLayer(r, job.d, job.diffId);
    });
    // let every download finish or fail before reporting, so that no half-done work is left in tmp/
    const results = await Promise.allSettled(workers);
    for (const res of results) if (res.status === 'rejected') throw res.reason;
    const record: ImageRecord = {
      ref: key,
      manifestDigest: fetched.digest,
      configDigest: doc.config.digest,
      config,
      layers: diffIds,
      layerSizes: doc.layers.map((l) => l.size),
      pulledAt: new Date().toISOString(),
    };
    await ensurePrivateDir(this.imagesDir);
    const file = this.recordPath(key);
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify(record), { mode: 0o600 });
    await fsp.rename(tmp, file);
    this.log.info('image pulled', { 'image.ref': key, 'image.digest': fetched.digest, 'image.layers': diffIds.length });
    return record;
  }

  private parseJson<T>(body: Buffer, what: string): T {
    try {
      return JSON.parse(body.toString('utf8')) as T;
    } catch (e) {
      throw new ImageError(`${what} is not valid JSON`, 'invalid', e);
    }
  }

  private async hasLayers(rec: ImageRecord): Promise<boolean> {
    for (const l of rec.layers) if (!(await exists(path.join(this.layersRoot, hexOf(l), 'meta.json')))) return false;
    return true;
  }

  /** Makes sure one layer is unpacked; concurrent calls for the same layer share the work. */
  ensureLayer(ref: ImageReference, desc: Descriptor, diffId: string): Promise<void> {
    let p = this.inflight.get(diffId);
    if (!p) {
      p = this.fetchLayer(ref, desc, diffId).finally(() => this.inflight.delete(diffId));
      this.inflight.set(diffId, p);
    }
    return p;
  }

  private async fetchLayer(ref: ImageReference, desc: Descriptor, diffId: string): Promise<void> {
    const hex = hexOf(diffId);
    hexOf(desc.digest);
    const final = path.join(this.layersRoot, hex);
    if (await exists(path.join(final, 'meta.json'))) {
      this.counters.layersReused++;
      return;
    }
    if (/zstd/.test(desc.mediaType)) throw new ImageError(`layer ${desc.digest}: zstd layers are not supported yet`, 'invalid');
    const lim = this.opts.limits ?? {};
    const maxLayer = lim.maxLayerBytes ?? DEFAULT_MAX_LAYER_BYTES;
    const size = descriptorSize(desc, `layer ${desc.digest} of ${formatReference(ref)}`);
    // compressed data is never (much) larger than what it expands to
    if (size > maxLayer) throw new ImageError(`layer ${desc.digest} of ${formatReference(ref)} is ${size} bytes, over the limit of ${maxLayer}`, 'invalid');
    await ensurePrivateDir(this.tmpDir);
    await ensurePrivateDir(this.layersRoot);
    const work = path.join(this.tmpDir, `layer-${hex.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    const blob = `${work}.blob`;
    try {
      // 1. download, counting and hashing
      const src = await this.client.getBlob(ref, desc.digest);
      const h = createHash('sha256');
      let n = 0;
      const what = `layer ${desc.digest} of ${formatReference(ref)}`;
      try {
        await pipeline(
          src,
          async function* (source: AsyncIterable<Buffer>) {
            for await (const c of source) {
              n += c.length;
              // stop at the first byte past the descriptor's size: a registry cannot fill the disk
              if (n > size) throw new ImageError(`${what} refused: more than the ${size} bytes its descriptor says`, 'invalid');
              h.update(c);
              yield c;
            }
          },
          fs.createWriteStream(blob, { mode: 0o600 }),
        );
      } finally {
        this.counters.bytesPulled += n;
        this.counters.layerBytesPulled += n;
      }
      checkSize(n, size, what);
      const got = 'sha256:' + h.digest('hex');
      if (got !== desc.digest) {
        throw new ImageError(`layer ${desc.digest} of ${formatReference(ref)} refused: content has digest ${got}`, 'digest-mismatch');
      }
      // 2. unpack, checking the diff id
      await fsp.mkdir(path.join(work, 'diff'), { recursive: true });
      const gz = await isGzip(blob);
      const dh = createHash('sha256');
      const diffDir = path.join(work, 'diff');
      const hashStage = async function* (source: AsyncIterable<Buffer>) {
        for await (const c of source) {
          dh.update(c);
          yield c;
        }
      };
      const log = this.log;
      const extract = async (source: AsyncIterable<Buffer>) => {
        await unpackLayer(source, diffDir, {
          limits: lim,
          helperPath: this.opts.helperPath,
          onWarning: (message, entry) => log.warn('layer entry changed', { 'image.ref': formatReference(ref), 'layer.digest': desc.digest, 'layer.entry': entry, message }),
        });
      };
      try {
        if (gz) await pipeline(fs.createReadStream(blob), createGunzip(), hashStage, extract);
        else await pipeline(fs.createReadStream(blob), hashStage, extract);
      } catch (e) {
        throw new ImageError(`layer ${desc.digest} of ${formatReference(ref)} could not be unpacked: ${e instanceof Error ? e.message : String(e)}`, 'invalid', e);
      }
      const gotDiff = 'sha256:' + dh.digest('hex');
      if (gotDiff !== diffId) {
        throw new ImageError(`layer ${desc.digest} of ${formatReference(ref)} refused: uncompressed digest ${gotDiff}, config says ${diffId}`, 'digest-mismatch');
      }
      await fsp.writeFile(path.join(work, 'meta.json'), JSON.stringify({ diffId, digest: desc.digest, size: n, mediaType: desc.mediaType, unpackedAt: new Date().toISOString() }), { mode: 0o600 });
      try {
        await fsp.rename(work, final);
      } catch (e) {
        if (!(await exists(path.join(final, 'meta.json')))) throw e;
      }
      this.counters.layersPulled++;
    } finally {
      await fsp.rm(blob, { force: true });
      await fsp.rm(work, { recursive: true, force: true });
    }
  }

  async removeImage(ref: string): Promise<void> {
    await fsp.rm(this.recordPath(formatReference(ImageStore.canonical(ref))), { force: true });
  }

  /**
   * Removes layers that no image record and no id in `inUse` (layers of
   * existing containers) references, and leftovers in tmp/.
   */
  async gc(inUse: Iterable<string> = []): Promise<{ removedLayers: string[] }> {
    const keep = new Set<string>();
    for (const d of inUse) keep.add(hexOf(d));
    for (const img of await this.listImages()) for (const l of img.layers) keep.add(hexOf(l));
    const removed: string[] = [];
    for (const name of await fsp.readdir(this.layersRoot).catch(() => [] as string[])) {
      if (keep.has(name) || this.inflight.has(`sha256:${name}`)) continue;
      await fsp.rm(path.join(this.layersRoot, name), { recursive: true, force: true });
      removed.push(`sha256:${name}`);
    }
    if (this.inflight.size === 0) await fsp.rm(this.tmpDir, { recursive: true, force: true });
    return { removedLayers: removed };
  }
}

async function isGzip(file: string): Promise<boolean> {
  const fh = await fsp.open(file, 'r');
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** A descriptor's size, refused unless a non-negative integer. */
function descriptorSize(d: Descriptor, what: string): number {
  if (!Number.isSafeInteger(d.size) || d.size < 0) throw new ImageError(`${what}: bad size ${JSON.stringify(d.size)} in its descriptor`, 'invalid');
  return d.size;
}

/** Picks linux/<host arch> from an image index or manifest list. */
export function pickPlatform(manifests: Descriptor[], arch = hostArch()): Descriptor | undefined {
  return manifests.find((m) => (m.platform?.os ?? 'linux') === 'linux' && m.platform?.architecture === arch);
}

export { sha256 };
