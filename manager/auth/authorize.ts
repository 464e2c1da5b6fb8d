// Authorization of every Control call, before its handler runs: who is
// calling (identity.ts: the verified certificate, LOCAL_ROOT on the unix
// socket, or the user a manager forwards for), may their role call this RPC
// (roles.ts), and the audit record of the call (audit.ts).
//
//   no identity                          → UNAUTHENTICATED
//   revoked certificate                  → UNAUTHENTICATED
//   forwarded-for metadata, not a manager → PERMISSION_DENIED (a forgery: refused, audited)
//   manager or worker, not forwarding     → PERMISSION_DENIED (nodes use the Dispatcher)
//   role without the RPC in its access    → PERMISSION_DENIED naming role and RPC
//
// Handlers read the identity a call was authorized as with `callerOf(call)`
// (to forward it, or to record who created a user).
import * as grpc from '@grpc/grpc-js';
import { isUserRole, type Identity } from '../../common/identity';
import { errMsg, nullLogger, type Logger } from '../../common/logger';
import type { AuditEvent } from '../../proto/events';
import type { CertIssuer } from '../ca/issuer';
import type { AuditSink } from './audit';
import { identityOf, LOCAL_SOCKET } from './identity';
import { ACCESS_ROLES, ruleOf, type RpcRule } from './roles';

/**
 * Metadata a manager sets on a Control call it makes on behalf of a user
 * (JSON: id, role, cluster, serial of the user's identity). Honoured only
 * when the caller's own certificate is a manager's.
 */
export const FORWARDED_FOR = 'convoy-forwarded-for';

export type Via = AuditEvent['who']['via'];

/** The identity a call was authorized as, and how it arrived. */
export interface Caller {
  identity: Identity;
  via: Via;
  /** The manager that forwarded the call (via 'forwarded'). */
  forwardedBy?: string;
}

const callers = new WeakMap<object, Caller>();
const targets = new WeakMap<object, { id?: string; name?: string }>();

/**
 * What a handler found the call to be about, for its audit record, when
 * neither the request (a reference: id, name or prefix) nor the answer
 * (empty, for a removal) says it.
 */
export function auditTarget(call: object, t: { id?: string; name?: string }): void {
  targets.set(call, t);
}

/** The caller of an authorized call (undefined outside the authorize wrapper). */
export function callerOf(call: object): Caller | undefined {
  return callers.get(call);
}

/** Metadata that carries `who` to a peer manager (proto/client.ts `metadata`). */
export function forwardedMetadata(who: Identity): Record<string, string> {
  const { id, role, cluster, serial } = who;
  return { [FORWARDED_FOR]: JSON.stringify({ id, role, cluster, ...(serial ? { serial } : {}) }) };
}

export interface AuthorizeOptions {
  /** Audit records of this manager ("manager/<id>" is their source). */
  audit: AuditSink;
  source: string;
  /** Revocation check of every identity (the cluster CA); none: certificates are only checked by TLS. */
  issuer?: Pick<CertIssuer, 'isRevoked'>;
  /**
   * The identity of a call that arrives with no certificate. Only for the
   * plaintext TCP listener that predates mutual TLS (issue 11): with TLS
   * client certificates required no such call arrives, and without this
   * option it is refused (UNAUTHENTICATED).
   */
  anonymous?: Identity;
  /** The rules; default CONTROL_RULES (tests pass their own). */
  rule?: (rpc: string) => RpcRule | undefined;
  log?: Logger;
  now?: () => number;
}

type Status = { code: grpc.status; message: string };
type AnyCall = { metadata: grpc.Metadata; request?: unknown; getAuthContext?: () => unknown; [LOCAL_SOCKET]?: boolean };

function fail(code: grpc.status, message: string): grpc.ServiceError {
  return Object.assign(new Error(message), { code, details: message, metadata: new grpc.Metadata() });
}

const describe = (i: Identity) => `${i.role} "${i.id}"`;

/** Parses and checks a forwarded identity; undefined when it is not one. */
function parseForwarded(raw: string): Identity | undefined {
  try {
    const v = JSON.parse(raw) as Partial<Identity>;
    if (typeof v.id !== 'string' || !v.id || typeof v.role !== 'string' || !isUserRole(v.role)) return undefined;
    return { id: v.id, role: v.role, cluster: typeof v.cluster === 'string' ? v.cluster : '', ...(typeof v.serial === 'string' ? { serial: v.serial } : {}) };
  } catch {
    return undefined;
  }
}

/** Who the call is from, or why it is refused before its rule is looked at. */
function resolveCaller(call: AnyCall, o: AuthorizeOptions): { caller?: Caller; direct?: Identity; via: Via; refuse?: Status } {
  const local = call[LOCAL_SOCKET] === true;
  const cert = identityOf(call as Parameters<typeof identityOf>[0]);
  const direct = cert ?? o.anonymous;
  const via: Via = local ? 'unix-socket' : cert ? 'tls' : 'plaintext';
  if (!direct) return { via, refuse: { code: grpc.status.UNAUTHENTICATED, message: 'no client certificate: the Control API takes a user certificate (convoy user create) or the manager\'s unix socket' } };
  if (!local && cert && o.issuer?.isRevoked(cert)) return { direct, via, refuse: { code: grpc.status.UNAUTHENTICATED, message: `the certificate of ${describe(cert)} is revoked` } };
  const fwd = call.metadata?.get(FORWARDED_FOR) ?? [];
  if (fwd.length) {
    if (via === 'plaintext') {
      // The plaintext fallback is admin already and proves nothing: the claim is ignored.
    } else if (direct.role !== 'manager' || via !== 'tls') {
      return { direct, via, refuse: { code: grpc.status.PERMISSION_DENIED, message: `${describe(direct)} may not forward calls for another identity (${FORWARDED_FOR} is for managers)` } };
    } else {
      const who = fwd.length === 1 ? parseForwarded(String(fwd[0])) : undefined;
      if (!who) return { direct, via, refuse: { code: grpc.status.PERMISSION_DENIED, message: `${FORWARDED_FOR}: not a user identity` } };
      if (o.issuer?.isRevoked(who)) return { direct, via, refuse: { code: grpc.status.UNAUTHENTICATED, message: `the certificate of ${describe(who)} is revoked` } };
      return { via: 'forwarded', caller: { identity: who, via: 'forwarded', forwardedBy: direct.id } };
    }
  }
  return { via, caller: { identity: direct, via } };
}

/** Whether `caller` may make a call under `rule`; the refusal otherwise. */
function check(rpc: string, rule: RpcRule | undefined, caller: Caller): Status | undefined {
  const { identity } = caller;
  if (!isUserRole(identity.role))
    return { code: grpc.status.PERMISSION_DENIED, message: `role ${identity.role} ("${identity.id}") may not call ${rpc}: nodes call the Dispatcher, not the Control API` };
  if (!rule) return { code: grpc.status.PERMISSION_DENIED, message: `${rpc} is not in the role table: refused to every role` };
  const allowed = ACCESS_ROLES[rule.access];
  if (!allowed.includes(identity.role)) return { code: grpc.status.PERMISSION_DENIED, message: `role ${identity.role} ("${identity.id}") may not call ${rpc} (allowed: ${allowed.join(', ')})` };
  return undefined;
}

// ---- the audit record's target and details ------------------------------------

type Obj = Record<string, unknown> | null | undefined;
const obj = (v: unknown): Obj => (v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

/** The object a call is about: from the answer when there is one, else from the request. */
export function targetOf(kind: RpcRule['kind'], req: unknown, res: unknown): AuditEvent['target'] {
  const q = obj(req);
  const r = obj(obj(res)?.[kind]);
  const spec = obj(r?.spec) ?? obj(q?.spec);
  const id = str(r?.id);
  let name = str(spec?.name) ?? str(r?.name) ?? str(obj(r?.description)?.hostname) ?? str(q?.name);
  if (kind === 'task' && r) name = `${str(r.serviceName) ?? ''}.${String(r.slot ?? '')}`;
  const ref = str(q?.[kind]);
  if (kind === 'cluster') return { kind, id: 'default' };
  return { kind, ...(id ? { id } : ref ? { id: ref } : {}), ...(name ? { name } : {}) };
}

/** Request fields worth recording, by name (a whitelist: a request may carry a secret's value). */
const DETAIL_FIELDS = ['replicas', 'force', 'version', 'args', 'user', 'tty', 'worker', 'manager', 'role'] as const;

export function detailOf(req: unknown): Record<string, string> | undefined {
  const q = obj(req);
  if (!q) return undefined;
  const d: Record<string, string> = {};
  for (const f of DETAIL_FIELDS) {
    const v = q[f];
    if (Array.isArray(v)) {
      if (v.length) d[f] = v.map(String).join(' ');
    } else if (typeof v === 'number' || typeof v === 'boolean' || (typeof v === 'string' && v)) {
      if (v !== false && v !== 0) d[f] = String(v);
    }
  }
  const image = str(obj(obj(q.spec)?.container)?.image);
  if (image) d.image = image;
  return Object.keys(d).length ? d : undefined;
}

// ---- the wrapper -------------------------------------------------------------------

type Handler = (...args: never[]) => unknown;

/**
 * `handlers` with every method of `service` authorized first. A method of
 * the service with no handler is left out (grpc-js answers UNIMPLEMENTED);
 * a method with no rule is refused to everyone.
 */
export function authorize<H extends object>(service: grpc.ServiceDefinition, handlers: H, o: AuthorizeOptions): H {
  const log = o.log ?? nullLogger;
  const now = o.now ?? Date.now;
  const ruleFor = o.rule ?? ruleOf;
  const record = (rpc: string, rule: RpcRule | undefined, who: Caller | { identity?: Identity; via: Via; forwardedBy?: undefined }, req: unknown, res: unknown, st: Status | undefined, noted?: { id?: string; name?: string }) => {
    const i = who.identity;
    try {
      o.audit.record({
        type: 'audit',
        action: rpc,
        time: now(),
        source: o.source,
        who: {
          id: i?.id ?? '',
          role: i?.role ?? '',
          ...(i?.serial ? { serial: i.serial } : {}),
          via: who.via,
          ...(who.forwardedBy ? { forwardedBy: who.forwardedBy } : {}),
        },
        target: { ...targetOf(rule?.kind ?? 'cluster', req, res), ...noted },
        result: st ? { ok: false, code: grpc.status[st.code] ?? String(st.code), message: st.message } : { ok: true },
        ...(detailOf(req) ? { detail: detailOf(req) } : {}),
      });
    } catch (e) {
      log.error('audit record failed', { rpc, err: errMsg(e) });
    }
  };

  const out: Record<string, Handler> = {};
  const given = handlers as Record<string, Handler | undefined>;
  for (const [rpc, def] of Object.entries(service)) {
    const h = given[rpc] ?? given[def.originalName ?? ''];
    if (!h) continue;
    const rule = ruleFor(rpc);
    const admit = (call: AnyCall): { caller?: Caller; refusal?: grpc.ServiceError } => {
      const { caller, direct, via, refuse } = resolveCaller(call, o);
      const st = refuse ?? (caller ? check(rpc, rule, caller) : undefined);
      if (st || !caller) {
        const s = st ?? { code: grpc.status.UNAUTHENTICATED, message: 'no identity' };
        log.warn('control call refused', { rpc, code: grpc.status[s.code], who: (caller?.identity ?? direct)?.id ?? '', err: s.message });
        record(rpc, rule, caller ?? { identity: direct, via }, call.request, undefined, s);
        return { refusal: fail(s.code, s.message) };
      }
      callers.set(call, caller);
      return { caller };
    };
    if (!def.requestStream && !def.responseStream) {
      out[rpc] = ((call: AnyCall, cb: grpc.sendUnaryData<unknown>) => {
        const { caller, refusal } = admit(call);
        if (refusal || !caller) return cb(refusal ?? fail(grpc.status.UNAUTHENTICATED, 'no identity'));
        const done: grpc.sendUnaryData<unknown> = rule?.audit
          ? (err, res) => {
              record(rpc, rule, caller, call.request, res, err ? { code: err.code ?? grpc.status.UNKNOWN, message: err.details ?? '' } : undefined, targets.get(call));
              cb(err, res);
            }
          : cb;
        return (h as unknown as (c: AnyCall, cb: grpc.sendUnaryData<unknown>) => unknown)(call, done);
      }) as Handler;
    } else {
      // Streams: authorized once at the start (their audit record is that of the start).
      out[rpc] = ((call: AnyCall & { emit(ev: 'error', e: unknown): void }, ...rest: unknown[]) => {
        const { caller, refusal } = admit(call);
        if (refusal || !caller) return call.emit('error', refusal);
        if (rule?.audit) record(rpc, rule, caller, call.request, undefined, undefined);
        return (h as unknown as (c: unknown, ...r: unknown[]) => unknown)(call, ...rest);
      }) as Handler;
    }
  }
  return out as H;
}
