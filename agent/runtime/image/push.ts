// Building and pushing images without Docker: a directory becomes one gzip
// layer plus an OCI config; an OCI image layout can be pushed as is. Blobs go
// up with the monolithic upload (POST then PUT with the digest), then the
// manifest is PUT. `convoy image push` wraps pushDirectory / pushOciLayout.
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { hostArch, MEDIA, type Descriptor, type ImageConfig, type ImageIndex, type Manifest } from './oci';
import { formatReference, parseReference } from './reference';
import { ImageError, RegistryClient, sha256, type RegistryOptions } from './registry';
import { packDirectory, type PackOptions } from './tar';

export interface BuiltLayer {
  /** Digest of the compressed blob. */
  digest: string;
  /** Digest of the uncompressed tar. */
  diffId: string;
  size: number;
  mediaType: string;
  data: Buffer;
}

/** The runtime part of an image config (Docker's names in camelCase). */
export interface ImageSpec {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  /** "80/tcp" */
  exposedPorts?: string[];
  stopSignal?: string;
  labels?: Record<string, string>;
  healthcheck?: { test: string[]; intervalMs?: number; timeoutMs?: number; startPeriodMs?: number; retries?: number };
}

export interface BuiltImage {
  config: ImageConfig;
  configBody: Buffer;
  layers: BuiltLayer[];
  manifest: Buffer;
  manifestDigest: string;
}

const MS = 1_000_000; // ns per ms

/** Packs `dir` into one gzip layer (in memory: meant for small images and tests). */
export async function buildLayer(dir: string, opts: PackOptions = { uid: 0, gid: 0 }): Promise<BuiltLayer> {
  const chunks: Buffer[] = [];
  for await (const c of packDirectory(dir, opts)) chunks.push(c);
  const tar = Buffer.concat(chunks);
  const data = gzipSync(tar);
  return { digest: sha256(data), diffId: sha256(tar), size: data.length, mediaType: MEDIA.ociLayerGzip, data };
}

/** Puts layers (bottom first) and a spec together into an OCI image. */
export function assembleImage(layers: BuiltLayer[], spec: ImageSpec = {}): BuiltImage {
  const config: ImageConfig = {
    architecture: hostArch(),
    os: 'linux',
    created: new Date(0).toISOString(),
    config: {
      Env: spec.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
      ...(spec.cmd ? { Cmd: spec.cmd } : {}),
      ...(spec.workingDir ? { WorkingDir: spec.workingDir } : {}),
      ...(spec.user ? { User: spec.user } : {}),
      ...(spec.stopSignal ? { StopSignal: spec.stopSignal } : {}),
      ...(spec.labels ? { Labels: spec.labels } : {}),
      ...(spec.exposedPorts ? { ExposedPorts: Object.fromEntries(spec.exposedPorts.map((p) => [p.includes('/') ? p : `${p}/tcp`, {}])) } : {}),
      ...(spec.healthcheck
        ? {
            Healthcheck: {
              Test: spec.healthcheck.test,
              Interval: (spec.healthcheck.intervalMs ?? 0) * MS,
              Timeout: (spec.healthcheck.timeoutMs ?? 0) * MS,
              StartPeriod: (spec.healthcheck.startPeriodMs ?? 0) * MS,
              Retries: spec.healthcheck.retries ?? 0,
            },
          }
        : {}),
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: new Date(0).toISOString(), created_by: 'convoy image build' })),
  };
  const configBody = Buffer.from(JSON.stringify(config));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: { mediaType: MEDIA.ociConfig, digest: sha256(configBody), size: configBody.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifestBody = Buffer.from(JSON.stringify(manifest));
  return { config, configBody, layers, manifest: manifestBody, manifestDigest: sha256(manifestBody) };
}

export interface PushResult {
  ref: string;
  digest: string;
  /** Blobs actually uploaded (the others were already there). */
  uploaded: string[];
}

async function pushBlobs(client: RegistryClient, ref: ReturnType<typeof parseReference>, blobs: { digest: string; data: Buffer }[]): Promise<string[]> {
  const uploaded: string[] = [];
  for (const b of blobs) {
    if (await client.blobExists(ref, b.digest)) continue;
    await client.uploadBlob(ref, b.digest, b.data);
    uploaded.push(b.digest);
  }
  return uploaded;
}

/** Pushes a built image as `ref` ("host:port/repo:tag"). */
export async function pushImage(image: BuiltImage, ref: string, registry: RegistryOptions = {}): Promise<PushResult> {
  const r = parseReference(ref);
  const client = new RegistryClient(registry);
  const uploaded = await pushBlobs(client, r, [...image.layers, { digest: sha256(image.configBody), data: image.configBody }]);
  await client.putManifest(r, r.tag ?? image.manifestDigest, MEDIA.ociManifest, image.manifest);
  return { ref: formatReference(r), digest: image.manifestDigest, uploaded };
}

/** Builds an image from a root filesystem directory and pushes it. */
export async function pushDirectory(dir: string, ref: string, spec: ImageSpec = {}, registry: RegistryOptions = {}): Promise<PushResult> {
  return pushImage(assembleImage([await buildLayer(dir)], spec), ref, registry);
}

/**
 * Pushes an OCI image layout directory (index.json + blobs/sha256/...): the
 * manifest for this host's platform, or the only one.
 */
export async function pushOciLayout(layoutDir: string, ref: string, registry: RegistryOptions = {}): Promise<PushResult> {
  const readBlob = async (digest: string): Promise<Buffer> => {
    const hex = digest.replace(/^sha256:/, '');
    const data = await fsp.readFile(path.join(layoutDir, 'blobs', 'sha256', hex));
    if (sha256(data) !== digest) throw new ImageError(`blob ${digest} in ${layoutDir} does not match its digest`, 'digest-mismatch');
    return data;
  };
  const index = JSON.parse(await fsp.readFile(path.join(layoutDir, 'index.json'), 'utf8')) as ImageIndex;
  let desc: Descriptor | undefined = index.manifests.length === 1 ? index.manifests[0] : index.manifests.find((m) => m.platform?.architecture === hostArch());
  if (!desc) throw new ImageError(`${layoutDir}: no manifest for linux/${hostArch()}`, 'invalid');
  let body = await readBlob(desc.digest);
  let doc = JSON.parse(body.toString()) as Manifest & ImageIndex;
  if (Array.isArray(doc.manifests)) {
    desc = doc.manifests.find((m) => m.platform?.architecture === hostArch()) ?? doc.manifests[0];
    if (!desc) throw new ImageError(`${layoutDir}: empty index`, 'invalid');
    body = await readBlob(desc.digest);
    doc = JSON.parse(body.toString()) as Manifest & ImageIndex;
  }
  const r = parseReference(ref);
  const client = new RegistryClient(registry);
  const blobs: { digest: string; data: Buffer }[] = [];
  for (const d of [...doc.layers, doc.config]) blobs.push({ digest: d.digest, data: await readBlob(d.digest) });
  const uploaded = await pushBlobs(client, r, blobs);
  await client.putManifest(r, r.tag ?? desc.digest, doc.mediaType ?? desc.mediaType, body);
  return { ref: formatReference(r), digest: desc.digest, uploaded };
}

/** Digest of a buffer as used in OCI descriptors. */
export function digestOf(data: Buffer): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}
