// The tasks this host runs, as the attacher wired them. The programmer needs
// them for what NetworkState does not carry (host-mode ports) and for what
// must be right before a task is RUNNING (its DNS view: a container resolves
// names while it starts).
import type { PortConfig } from '../../proto/mod';

export interface LocalTask {
  taskId: string;
  serviceId: string;
  serviceName: string;
  /** Addresses without prefix length, one per attached network. */
  addresses: string[];
  /** Ids of the networks the task is attached to. */
  networks: string[];
  /** Host-mode ports with their published port. */
  hostPorts: PortConfig[];
  netns: string;
  veth: string;
  /** The MAC of the task's eth0 (attacher.ts taskMac): the only source MAC its veth passes. */
  mac: string;
  /** The service opted in to reaching its node's addresses (--host-access). */
  hostAccess: boolean;
  /** --dns: where the agent's DNS relays this task's queries for names it does not answer (none: the host's resolvers). */
  dnsServers?: string[];
}

export class LocalTasks {
  private readonly tasks = new Map<string, LocalTask>();
  private readonly listeners: (() => Promise<void> | void)[] = [];
  private pending: Promise<unknown> = Promise.resolve();

  set(t: LocalTask): void {
    this.tasks.set(t.taskId, t);
    this.changed();
  }

  delete(taskId: string): LocalTask | undefined {
    const t = this.tasks.get(taskId);
    if (t) {
      this.tasks.delete(taskId);
      this.changed();
    }
    return t;
  }

  get(taskId: string): LocalTask | undefined {
    return this.tasks.get(taskId);
  }

  all(): LocalTask[] {
    return [...this.tasks.values()];
  }

  /** fn may return the promise of its work: settled() waits for it. */
  onChange(fn: () => Promise<void> | void): void {
    this.listeners.push(fn);
  }

  /**
   * Resolves once the listeners' work for every change so far is done: the
   * attacher waits for it so that a task's anti-spoofing and firewall rules
   * (and its DNS view) are in place before its container runs.
   */
  async settled(): Promise<void> {
    for (;;) {
      const p = this.pending;
      await p;
      if (p === this.pending) return;
    }
  }

  private changed(): void {
    this.pending = Promise.all(this.listeners.map((fn) => fn())).catch(() => undefined);
  }
}
