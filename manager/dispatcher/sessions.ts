// The session table: which sessions this manager holds, and when they end.
//
// A session is one registration of a node (Session call) bound to one store
// lease. It ends, and every later call naming it is refused NOT_FOUND (the
// agent registers again, keeping its node id), when:
//   - its lease lapses: no heartbeat within the TTL (checked against the
//     table's clock at every call, swept every heartbeat period, and told by
//     the store when a keepalive finds the lease gone);
//   - it is replaced: the node opened a new session (here, or on another
//     manager: the node object in the cache names another session id);
//   - its Session stream ends (the agent cancelled it, or the manager stops).
// Ending a session ends its open Assignments and Network streams with the
// same NOT_FOUND. It does not revoke the lease: a node that reconnects at
// once re-binds its liveness key to its new lease and never shows as down;
// one that does not is down when the old lease lapses, as before.
import type { Lease } from '../store/store';

/** An open stream of a session, ended with the session. */
export interface SessionStream {
  end(reason: string): void;
}

export interface Session {
  id: string;
  nodeId: string;
  lease: Lease;
  /** The store revision of the node write that registered it (a later node write naming another session replaced it). */
  revision: number;
  /** When the lease lapses unless kept alive (table clock, ms). */
  expiresAt: number;
  streams: Set<SessionStream>;
}

export type EndReason = 'expired' | 'replaced' | 'closed';

export class SessionTable {
  private readonly byId = new Map<string, Session>();
  private readonly byNode = new Map<string, string>();

  constructor(
    readonly now: () => number,
    readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.byId.size;
  }

  /** Adds a new session; the node's previous session here (if any) ends as replaced. */
  add(s: Omit<Session, 'expiresAt' | 'streams'>): Session {
    const prev = this.byNode.get(s.nodeId);
    if (prev) this.end(prev, 'replaced');
    const full: Session = { ...s, expiresAt: this.now() + this.ttlMs, streams: new Set() };
    this.byId.set(s.id, full);
    this.byNode.set(s.nodeId, s.id);
    return full;
  }

  /** The live session with this id; an expired one ends here and is not returned. */
  get(id: string): Session | undefined {
    const s = this.byId.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.end(id, 'expired');
      return undefined;
    }
    return s;
  }

  /** The node's current session here. */
  ofNode(nodeId: string): Session | undefined {
    const id = this.byNode.get(nodeId);
    return id ? this.get(id) : undefined;
  }

  /** A keepalive went through: the lease runs a full TTL from now. */
  keptAlive(s: Session): void {
    s.expiresAt = this.now() + this.ttlMs;
  }

  /** Ends a session and its streams; returns it if it was open. */
  end(id: string, reason: EndReason): Session | undefined {
    const s = this.byId.get(id);
    if (!s) return undefined;
    this.byId.delete(id);
    if (this.byNode.get(s.nodeId) === id) this.byNode.delete(s.nodeId);
    for (const st of [...s.streams]) st.end(`session invalid: ${reason}`);
    s.streams.clear();
    return s;
  }

  /** Ends every session whose lease lapsed; returns them. */
  sweep(): Session[] {
    const now = this.now();
    const out: Session[] = [];
    for (const s of [...this.byId.values()]) if (s.expiresAt <= now && this.end(s.id, 'expired')) out.push(s);
    return out;
  }

  all(): Session[] {
    return [...this.byId.values()];
  }
}
