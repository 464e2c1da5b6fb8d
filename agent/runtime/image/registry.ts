// OCI distribution client: manifests and blobs, pulls and pushes, with
// Docker Hub-style bearer tokens (from the WWW-Authenticate challenge) and
// basic auth. HTTPS unless the registry is listed as insecure.
//
// Credentials go to the registry itself (over HTTP only when it is listed
// as insecure) and to its token service, whose realm must be HTTPS unless
// the realm's host is listed as insecure too. Redirects (blob storage) are
// followed by fetch, which drops the Authorization header when the origin
// changes (scheme, host or port), so no credential or token follows them.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { DEFAULT_REGISTRY, DOCKER_HUB_API, formatReference, type ImageReference } from './reference';
import { MEDIA } from './oci';

export type ImageErrorKind = 'not-found' | 'unreachable' | 'unauthorized' | 'digest-mismatch' | 'invalid' | 'registry';

/** Every failure of the image code, classified so the executor can say whether a retry can help. */
export class ImageError extends Error {
  override name = 'ImageError';
  constructor(
    message: string,
    readonly kind: ImageErrorKind,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
  get retryable(): boolean {
    return this.kind === 'unreachable' || this.kind === 'registry' || this.kind === 'digest-mismatch';
  }
}

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryOptions {
  /** Registries (host[:port]) spoken to over plain HTTP. */
  insecureRegistries?: string[];
  /** Credentials per registry host, or a lookup (the cluster's, delivered with a task's assignment). */
  credentials?: Record<string, RegistryCredentials> | ((registry: string) => RegistryCredentials | undefined);
  /** Timeout of one request that is not a blob transfer. */
  requestTimeoutMs?: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.dockerManifestList, MEDIA.ociManifest, MEDIA.dockerManifest].join(', ');

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]*))/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]))) params[p[1].toLowerCase()] = p[2] ?? p[3] ?? '';
  return { scheme: m[1].toLowerCase(), params };
}

export function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** Reads a response body, refusing it as soon as it passes `max` bytes (and before, when Content-Length says so). */
export async function readBounded(res: Response, max: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > max) {
    await res.body?.cancel();
    throw new ImageError(`${what} is ${declared} bytes, over the limit of ${max}`, 'invalid');
  }
  const chunks: Buffer[] = [];
  let n = 0;
  if (res.body) {
    for await (const c of Readable.fromWeb(res.body as WebReadableStream<Uint8Array>)) {
      n += (c as Buffer).length;
      if (n > max) throw new ImageError(`${what} is over the limit of ${max} bytes`, 'invalid');
      chunks.push(c as Buffer);
    }
  }
  return Buffer.concat(chunks);
}

/** Refuses content whose size is not its descriptor's. */
export function checkSize(got: number, want: number | undefined, what: string): void {
  if (want === undefined || got === want) return;
  throw new ImageError(`${what} is ${got} bytes but its descriptor says ${want}`, got > want ? 'invalid' : 'digest-mismatch');
}

export interface FetchedManifest {
  mediaType: string;
  digest: string;
  body: Buffer;
}

export class RegistryClient {
  private readonly tokens = new Map<string, string>();
  private readonly insecure: Set<string>;

  constructor(private readonly opts: RegistryOptions = {}) {
    this.insecure = new Set(opts.insecureRegistries ?? []);
  }

  private base(ref: ImageReference): string {
    const host = ref.registry === DEFAULT_REGISTRY ? DOCKER_HUB_API : ref.registry;
    const scheme = this.insecure.has(ref.registry) ? 'http' : 'https';
    return `${scheme}://${host}/v2/${ref.repository}`;
  }

  private basicAuth(ref: ImageReference): string | undefined {
    const creds = this.opts.credentials;
    const c = typeof creds === 'function' ? creds(ref.registry) : creds?.[ref.registry];
    return c ? 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64') : undefined;
  }

  private async doFetch(url: string, init: RequestInit, what: string, timeout: boolean): Promise<Response> {
    try {
      return await fetch(url, {
        ...init,
        redirect: 'follow',
        signal: timeout ? AbortSignal.timeout(this.opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS) : undefined,
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const detail = cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
      throw new ImageError(`registry ${new URL(url).host} unreachable (${detail}) while fetching ${what}`, 'unreachable', e);
    }
  }

  /** One request with the authentication dance: try, read the challenge, get a token, retry. */
  async request(ref: ImageReference, method: string, urlOrPath: string, init: { headers?: Record<string, string>; body?: Buffer; push?: boolean; what: string; timeout?: boolean }): Promise<Response> {
    const url = urlOrPath.startsWith('http') ? urlOrPath : this.base(ref) + urlOrPath;
    const scope = `repository:${ref.repository}:${init.push ? 'pull,push' : 'pull'}`;
    const key = `${ref.registry}|${scope}`;
    const make = (auth: string | undefined): RequestInit => ({
      method,
      headers: { ...(init.headers ?? {}), ...(auth ? { authorization: auth } : {}) },
      body: init.body,
    });
    const timeout = init.timeout ?? true;
    let res = await this.doFetch(url, make(this.tokens.get(key) ?? this.basicAuth(ref)), init.what, timeout);
    if (res.status !== 401) return res;
    const challenge = parseChallenge(res.headers.get('www-authenticate') ?? '');
    await res.body?.cancel();
    let auth: string | undefined;
    if (challenge?.scheme === 'bearer' && challenge.params.realm) {
      auth = await this.fetchToken(ref, challenge, scope);
    } else if (challenge?.scheme === 'basic') {
      auth = this.basicAuth(ref);
    }
    if (!auth) throw new ImageError(`registry ${ref.registry} requires authentication for ${init.what}`, 'unauthorized');
    this.tokens.set(key, auth);
    res = await this.doFetch(url, make(auth), init.what, timeout);
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new ImageError(`access to ${formatReference(ref)} denied by registry ${ref.registry}`, 'unauthorized');
    }
    return res;
  }

  private async fetchToken(ref: ImageReference, ch: Challenge, scope: string): Promise<string> {
    let u: URL;
    try {
      u = new URL(ch.params.realm);
    } catch {
      throw new ImageError(`registry ${ref.registry} names a token realm that is not a URL`, 'unauthorized');
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && this.insecure.has(u.host)))
      throw new ImageError(`registry ${ref.registry} names token realm ${u.protocol}//${u.host}: not HTTPS, and ${u.host} is not an insecure registry; no credentials sent`, 'unauthorized');
    if (ch.params.service) u.searchParams.set('service', ch.params.service);
    u.searchParams.set('scope', scope);
    const basic = this.basicAuth(ref);
    const res = await this.doFetch(u.toString(), { headers: basic ? { authorization: basic } : {} }, `a token for ${ref.repository}`, true);
    if (!res.ok) {
      await res.body?.cancel();
      throw new ImageError(`token service ${u.host} refused access to ${ref.repository} (HTTP ${res.status})`, 'unauthorized');
    }
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new ImageError(`token service ${u.host} returned no token`, 'unauthorized');
    return `Bearer ${token}`;
  }

  private async failure(ref: ImageReference, res: Response, what: string): Promise<ImageError> {
    let detail = '';
    try {
      const body = (await res.json()) as { errors?: { code?: string; message?: string }[] };
      detail = (body.errors ?? []).map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ');
    } catch {
      // not JSON
    }
    if (res.status === 404) return new ImageError(`${what} not found in registry ${ref.registry}${detail ? ` (${detail})` : ''}`, 'not-found');
    if (res.status === 401 || res.status === 403) return new ImageError(`access to ${what} denied by registry ${ref.registry}`, 'unauthorized');
    return new ImageError(`registry ${ref.registry} answered HTTP ${res.status} for ${what}${detail ? ` (${detail})` : ''}`, res.status >= 500 || res.status === 429 ? 'registry' : 'invalid');
  }

  /**
   * GETs a manifest (or index) by tag or digest; verifies it when asked by
   * digest. At most `maxBytes`; exactly `size` when a descriptor gave it.
   */
  async getManifest(ref: ImageReference, reference: string, limit: { maxBytes?: number; size?: number } = {}): Promise<FetchedManifest> {
    const what = `image ${formatReference({ ...ref, tag: reference.startsWith('sha256:') ? undefined : reference, digest: reference.startsWith('sha256:') ? reference : undefined })}`;
    const res = await this.request(ref, 'GET', `/manifests/${reference}`, { headers: { accept: MANIFEST_ACCEPT }, what });
    if (!res.ok) throw await this.failure(ref, res, what);
    const body = await readBounded(res, Math.min(limit.maxBytes ?? Infinity, limit.size ?? Infinity), `manifest of ${what}`);
    checkSize(body.length, limit.size, `manifest of ${what}`);
    const digest = sha256(body);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new ImageError(`manifest of ${what} has digest ${digest}, expected ${reference}`, 'digest-mismatch');
    }
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0].trim();
    return { mediaType, digest, body };
  }

  /** Streams a blob; the caller verifies its digest. */
  async getBlob(ref: ImageReference, digest: string): Promise<Readable> {
    const what = `blob ${digest} of ${ref.repository}`;
    const res = await this.request(ref, 'GET', `/blobs/${digest}`, { what, timeout: false });
    if (!res.ok || !res.body) throw await this.failure(ref, res, what);
    return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  }

  /** A small blob (a config) in memory: at most `maxBytes`, exactly `size` when given, checked against its digest. */
  async getBlobBuffer(ref: ImageReference, digest: string, limit: { maxBytes?: number; size?: number } = {}): Promise<Buffer> {
    const what = `blob ${digest} of ${ref.repository}`;
    const max = Math.min(limit.maxBytes ?? Infinity, limit.size ?? Infinity);
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of await this.getBlob(ref, digest)) {
      n += (c as Buffer).length;
      if (n > max) throw new ImageError(`${what} is over ${max} bytes (${limit.size !== undefined && limit.size <= (limit.maxBytes ?? Infinity) ? 'its descriptor\'s size' : 'the limit'})`, 'invalid');
      chunks.push(c as Buffer);
    }
    const body = Buffer.concat(chunks);
    checkSize(body.length, limit.size, what);
    if (sha256(body) !== digest) throw new ImageError(`blob ${digest} of ${ref.repository} does not match its digest (got ${sha256(body)})`, 'digest-mismatch');
    return body;
  }

  async blobExists(ref: ImageReference, digest: string): Promise<boolean> {
    const res = await this.request(ref, 'HEAD', `/blobs/${digest}`, { push: true, what: `blob ${digest}` });
    await res.body?.cancel();
    return res.ok;
  }

  /** Monolithic upload: POST to open an upload session, PUT the whole blob with its digest. */
  async uploadBlob(ref: ImageReference, digest: string, data: Buffer): Promise<void> {
    const what = `upload of blob ${digest} to ${ref.repository}`;
    const start = await this.request(ref, 'POST', `/blobs/uploads/`, { push: true, what });
    await start.body?.cancel();
    if (start.status !== 202) throw await this.failure(ref, start, what);
    const loc = start.headers.get('location');
    if (!loc) throw new ImageError(`registry ${ref.registry} gave no upload location`, 'registry');
    const url = new URL(loc, this.base(ref));
    url.searchParams.set('digest', digest);
    const put = await this.request(ref, 'PUT', url.toString(), {
      push: true,
      what,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
      body: data,
      timeout: false,
    });
    if (put.status !== 201) throw await this.failure(ref, put, what);
    await put.body?.cancel();
  }

  async putManifest(ref: ImageReference, reference: string, mediaType: string, body: Buffer): Promise<void> {
    const what = `manifest ${ref.repository}:${reference}`;
    const res = await this.request(ref, 'PUT', `/manifests/${reference}`, { push: true, what, headers: { 'content-type': mediaType }, body });
    if (res.status !== 201 && res.status !== 200) throw await this.failure(ref, res, what);
    await res.body?.cancel();
  }
}
