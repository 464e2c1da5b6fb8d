// Who may publish and subscribe to what on Convoy's NATS (docs/security.md,
// "NATS"). nats-server verifies every client's certificate against the
// cluster CA and maps its subject (verify_and_map) to one user of this
// table; a certificate whose subject is not in the table cannot connect.
//
//   worker/manager node N   pub  convoy.stats.N, convoy.events.task.state.N,
//                                _INBOX.convoy.logs.> (answers to log requests)
//                           sub  convoy.logs.N, _INBOX.convoy.logs.*.keepalive
//   manager (also)          pub  convoy.events.> , the events stream's JetStream API,
//                                convoy.logs.* (the dashboard's log requests, docs/dashboard.md)
//                           sub  convoy.stats.*, _INBOX.>
//   admin, operator, viewer read events (JetStream consumer on CONVOY_EVENTS, live)
//                           and logs (pub convoy.logs.*, sub their inboxes): the
//                           'read' access of manager/auth/roles.ts STREAM_ACCESS
//   anything else           not a user: refused at connect
import type { Identity, Role } from '../common/identity';
import { EVENTS_STREAM, logsSubject, statsSubject } from './events';

export interface SubjectPermission {
  allow: string[];
  deny?: string[];
}

export interface NatsPermissions {
  publish: SubjectPermission;
  subscribe: SubjectPermission;
}

/** Log requests are answered on the requester's inbox under this prefix (cli/events/logs.ts). */
export const LOG_INBOX_PREFIX = '_INBOX.convoy.logs';

/** Subject tokens Convoy puts ids in: no dots, wildcards, spaces or control characters. */
const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;
/** User names and cluster ids that are safe in a certificate subject and the server's config. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

/** Whether `id` can stand in a subject token (and so can be given per-node permissions). */
export function isSubjectToken(id: string): boolean {
  return TOKEN.test(id);
}

/** The event subject an agent publishes its task events on: convoy.events.task.state.<node>. */
export function nodeEventSubject(nodeId: string): string {
  return `convoy.events.task.state.${nodeId}`;
}

/** What a JetStream reader of the events stream needs (ordered consumers, fetch, flow control). */
const EVENTS_READER_PUB = [
  '$JS.API.INFO',
  `$JS.API.STREAM.INFO.${EVENTS_STREAM}`,
  `$JS.API.CONSUMER.CREATE.${EVENTS_STREAM}`,
  `$JS.API.CONSUMER.CREATE.${EVENTS_STREAM}.>`,
  `$JS.API.CONSUMER.INFO.${EVENTS_STREAM}.*`,
  `$JS.API.CONSUMER.DELETE.${EVENTS_STREAM}.*`,
  `$JS.API.CONSUMER.MSG.NEXT.${EVENTS_STREAM}.*`,
  `$JS.FC.${EVENTS_STREAM}.>`,
  `$JS.ACK.${EVENTS_STREAM}.>`,
];

/**
 * The permissions of one identity, or undefined when it gets none (it is
 * then left out of the server's users and cannot connect). Node ids must be
 * subject tokens; user names and cluster ids plain names.
 */
export function natsPermissions(who: Pick<Identity, 'id' | 'role'>): NatsPermissions | undefined {
  const role: Role = who.role;
  switch (role) {
    case 'worker':
    case 'manager': {
      if (!isSubjectToken(who.id)) return undefined;
      const node: NatsPermissions = {
        publish: { allow: [statsSubject(who.id), nodeEventSubject(who.id), `${LOG_INBOX_PREFIX}.>`] },
        subscribe: { allow: [logsSubject(who.id), `${LOG_INBOX_PREFIX}.*.keepalive`] },
      };
      if (role === 'worker') return node;
      return {
        publish: {
          allow: [...node.publish.allow, 'convoy.events.>', 'convoy.logs.*', '$JS.API.INFO', `$JS.API.STREAM.CREATE.${EVENTS_STREAM}`, `$JS.API.STREAM.UPDATE.${EVENTS_STREAM}`, `$JS.API.STREAM.INFO.${EVENTS_STREAM}`, `$JS.API.STREAM.MSG.GET.${EVENTS_STREAM}`],
        },
        subscribe: { allow: [...node.subscribe.allow, 'convoy.stats.*', '_INBOX.>'] },
      };
    }
    case 'admin':
    case 'operator':
    case 'viewer':
      // Events and logs are 'read' for every user role (STREAM_ACCESS; roles.test.ts checks the two agree).
      if (!NAME.test(who.id)) return undefined;
      return {
        publish: { allow: [...EVENTS_READER_PUB, 'convoy.logs.*', `${LOG_INBOX_PREFIX}.*.keepalive`] },
        subscribe: { allow: ['_INBOX.>', 'convoy.events.>'] },
      };
  }
}

/**
 * The user name nats-server's verify_and_map gives a certificate with the
 * subject O=<cluster>, OU=<role>, CN=<id>: its RFC 2253 form.
 */
export function natsUserName(who: Pick<Identity, 'id' | 'role' | 'cluster'>): string {
  return `CN=${who.id},OU=${who.role},O=${who.cluster}`;
}

/**
 * Who a NATS user is: the certificate subject (id, role, cluster) and, when
 * they differ, the role whose permissions it gets (`as`): a node that holds
 * a manager certificate but is placed as a worker (demoted) connects with
 * that certificate and gets a worker's rights.
 */
export type NatsIdentity = Pick<Identity, 'id' | 'role' | 'cluster'> & { as?: Role };

/** The users of the server's `authorization` block: one per identity that gets permissions, deduplicated (the last entry for a subject wins). */
export function natsUsers(identities: Iterable<NatsIdentity>): { user: string; permissions: NatsPermissions }[] {
  const out = new Map<string, { user: string; permissions: NatsPermissions }>();
  for (const who of identities) {
    if (!NAME.test(who.cluster)) continue;
    const permissions = natsPermissions({ id: who.id, role: who.as ?? who.role });
    if (!permissions) continue;
    const user = natsUserName(who);
    out.set(user, { user, permissions });
  }
  return [...out.values()].sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
}

/** The origin token of an event subject convoy.events.<type>.<action>.<origin>, if it has one. */
export function eventOrigin(subject: string): string | undefined {
  const parts = subject.split('.');
  return parts.length === 5 ? parts[4] : undefined;
}
