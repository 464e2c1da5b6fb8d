// Service discovery: a small DNS server on the bridge address (:53, UDP and
// TCP) of every host. Answers, per the asking container's networks:
//   <service>        A → the service's VIP on the networks both share
//                    (DNSRR mode: the ready tasks' addresses)
//   tasks.<service>  A → the ready tasks' addresses
// A single-label name or tasks.<x> that is no service the container can see
// → NXDOMAIN; anything else is relayed unchanged to the host's resolvers.
//
// The wire format is the small part of RFC 1035 this needs (no dependency),
// read as hostile input: every length, count and compression pointer is
// checked against the message before it is followed, so a crafted packet
// costs at most one pass over its own bytes and gets FORMERR (or nothing),
// never an exception out of the server. Answers too big for UDP (512 bytes,
// or the client's EDNS0 size up to EDNS_UDP_PAYLOAD_MAX) go out with TC set
// and as many whole records as fit; TCP (RFC 7766) carries the whole answer.
// Every resource a client can make the server hold (queries in flight,
// relayed queries, TCP connections, buffered bytes) has a limit per source
// address and, where sources add up, in total: DEFAULT_DNS_LIMITS.
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import type { Logger } from '../../common/logger';
import { errMsg, nullLogger } from '../../common/logger';

export const DNS_PORT = 53;
/** Answers are for now: scaling and failover must show at once. */
export const DNS_TTL = 0;
/** How long a relayed query waits for the upstream before the next one is tried. */
export const FORWARD_TIMEOUT_MS = 2000;

export const QTYPE_A = 1;
export const QTYPE_AAAA = 28;
export const QTYPE_OPT = 41;
export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;
/** Extended RCODE (RFC 6891 6.1.3): 4 high bits in the OPT record, 4 low bits in the header. */
export const RCODE_BADVERS = 16;

const HEADER_BYTES = 12;
const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const OPCODE_MASK = 0x7800;
/** RFC 1035 4.2.1: a UDP message without EDNS0 carries at most 512 bytes. */
export const UDP_PAYLOAD_CLASSIC = 512;
/**
 * The largest UDP answer, whatever size the client's OPT record advertises
 * (and the size this server advertises back). 1232 is DNS flag day 2020's
 * figure: the 1280-byte IPv6 minimum MTU less its headers, so an answer is
 * never fragmented on any path (fragments get lost and can be spoofed); it
 * also fits the overlay's 1450-byte MTU. Bigger answers go by TCP.
 */
export const EDNS_UDP_PAYLOAD_MAX = 1232;
/** RFC 1035 4.2.2: TCP messages carry a 16-bit length. */
const TCP_MESSAGE_MAX = 0xffff;
/** RFC 1035 2.3.4: labels of at most 63 octets, names of at most 255 on the wire. */
const LABEL_MAX = 63;
const NAME_WIRE_MAX = 255;
/** Bytes of one A record answering the question's name: pointer, type, class, TTL, rdlength, address. */
const A_RECORD_BYTES = 16;
/** Bytes of an OPT record without options: root name, type, class, TTL, rdlength. */
const OPT_RECORD_BYTES = 11;

/**
 * What one client may make the server hold. The sources are this host's
 * containers (and the host itself): a limit refuses the one container that
 * floods, never the others.
 */
export interface DnsLimits {
  /**
   * Queries of one source address being answered at once, UDP and TCP
   * together, each counted from its arrival until its answer is handed to the
   * kernel. Over it a UDP query is dropped (a flood: no state kept, nothing
   * sent back), and a TCP connection is not read until one completes (the
   * client's own pipelining waits; nothing is lost).
   */
  maxInflightPerSource: number;
  /**
   * Relayed queries of one source awaiting an upstream (each holds a socket
   * and a timer for up to forwardTimeoutMs per upstream). Over it: REFUSED at
   * once, so a stub resolver fails fast instead of waiting out its timeout.
   */
  maxForwardsPerSource: number;
  /** Relayed queries of every source together: the sockets the agent spends on relaying. Over it: REFUSED. */
  maxForwardsTotal: number;
  /** TCP connections of one source. Over it a new connection is closed at once (RFC 7766 6.2.2). */
  maxTcpConnsPerSource: number;
  /** TCP connections of every source together (file descriptors). */
  maxTcpConnsTotal: number;
  /**
   * A TCP connection with no query in flight is closed when no complete query
   * arrived for this long (RFC 7766 6.2.3: of the order of seconds). Counted
   * from complete queries, not bytes, so a client trickling one byte at a
   * time cannot hold a connection open.
   */
  tcpIdleTimeoutMs: number;
  /** Largest query read: over UDP a longer one gets FORMERR, over TCP its connection is closed. */
  maxQueryBytes: number;
  /** Cap on the UDP size a client's OPT record asks for (bytes, at least 512). */
  ednsUdpPayloadMax: number;
  /** How long a relayed query waits for each upstream. */
  forwardTimeoutMs: number;
}

export const DEFAULT_DNS_LIMITS: Readonly<DnsLimits> = {
  // A stub sends A and AAAA together and a busy program a few lookups at once;
  // 100 is far above that, and a local answer leaves the count at once.
  maxInflightPerSource: 100,
  // A program resolving external names in parallel (a crawler, a test runner)
  // needs a handful; 32 of them waiting 2 s each is already a stuck upstream.
  maxForwardsPerSource: 32,
  // 256 sockets at most for relaying, whatever the number of containers.
  maxForwardsTotal: 256,
  // A stub opens one connection per truncated answer and closes it after.
  maxTcpConnsPerSource: 8,
  maxTcpConnsTotal: 256,
  // A stub that fell back to TCP sends its query at once; 5 s leaves room to
  // pipeline a few more (BIND and Unbound use 30 s for the whole internet;
  // a bridge has no round trip to wait for).
  tcpIdleTimeoutMs: 5000,
  // A question is at most 259 bytes; EDNS options (cookies, client subnet,
  // RFC 8467 padding in blocks of 128) add a few hundred. 4 KiB is room for
  // any query a real client sends, and what one TCP connection makes us buffer.
  maxQueryBytes: 4096,
  ednsUdpPayloadMax: EDNS_UDP_PAYLOAD_MAX,
  forwardTimeoutMs: FORWARD_TIMEOUT_MS,
};

// ---- wire format -------------------------------------------------------------

/** A message this server refuses to read (answered FORMERR when its header is readable). */
export class DnsFormatError extends Error {
  override name = 'DnsFormatError';
}

export interface Question {
  /** Lower case, no trailing dot; a '.' or '\' inside a label is escaped with '\'. */
  name: string;
  qtype: number;
  qclass: number;
  /** Byte offset just after the question section. */
  end: number;
}

/** The query's OPT record (RFC 6891). */
export interface Edns {
  /** The client's UDP payload size, as sent (values under 512 mean 512). */
  udpPayload: number;
  version: number;
  /** DNSSEC OK: copied into the answer (RFC 3225 3). */
  dnssecOk: boolean;
}

export interface Query {
  id: number;
  flags: number;
  question: Question;
  edns?: Edns;
}

/**
 * The name at off, following compression pointers only backwards: each jump
 * must land before the start of the labels read since the previous one (and
 * after the header), so the walk ends within the message's length whatever
 * the pointers say. end is the offset just after the name where it sits.
 */
export function readName(msg: Buffer, off: number): { name: string; end: number } {
  const labels: string[] = [];
  let wire = 1; // the root's zero byte
  let end = -1;
  let runStart = off;
  let pos = off;
  for (;;) {
    if (pos >= msg.length) throw new DnsFormatError('name runs past the message');
    const len = msg[pos];
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return { name: labels.join('.'), end };
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= msg.length) throw new DnsFormatError('compression pointer runs past the message');
      const target = ((len & 0x3f) << 8) | msg[pos + 1];
      if (target < HEADER_BYTES || target >= runStart) throw new DnsFormatError(`compression pointer to ${target} from ${pos} (only backwards, past the header)`);
      if (end < 0) end = pos + 2;
      pos = runStart = target;
      continue;
    }
    // 0x40 (extended label types, RFC 6891 5) and 0x80 are not labels; a label
    // length byte over 63 is one of them.
    if (kind !== 0 || len > LABEL_MAX) throw new DnsFormatError(`label type 0x${kind.toString(16)} at ${pos}`);
    if (pos + 1 + len > msg.length) throw new DnsFormatError('label runs past the message');
    wire += 1 + len;
    if (wire > NAME_WIRE_MAX) throw new DnsFormatError(`name longer than ${NAME_WIRE_MAX} bytes`);
    labels.push(escapeLabel(msg.toString('latin1', pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
}

/** A label with '.' inside is one label, not two: keep it from matching a dotted name. */
function escapeLabel(l: string): string {
  return /[.\\]/.test(l) ? l.replace(/[.\\]/g, (c) => '\\' + c) : l;
}

interface RecordHead {
  type: number;
  klass: number;
  ttl: number;
  rdata: number;
  rdlength: number;
  /** Offset of the record's first byte (its name). */
  start: number;
  /** Offset just after the record. */
  end: number;
}

function readRecord(msg: Buffer, off: number): RecordHead {
  const { end: nameEnd } = readName(msg, off);
  if (nameEnd + 10 > msg.length) throw new DnsFormatError('record header runs past the message');
  const rdlength = msg.readUInt16BE(nameEnd + 8);
  const rdata = nameEnd + 10;
  if (rdata + rdlength > msg.length) throw new DnsFormatError('record data runs past the message');
  return {
    type: msg.readUInt16BE(nameEnd),
    klass: msg.readUInt16BE(nameEnd + 2),
    ttl: msg.readUInt32BE(nameEnd + 4),
    rdata,
    rdlength,
    start: off,
    end: rdata + rdlength,
  };
}

/** The OPT record's fields; its options must tile its data exactly. */
function readOpt(msg: Buffer, rr: RecordHead): Edns {
  if (msg[rr.start] !== 0) throw new DnsFormatError('OPT record with a name other than the root');
  for (let o = rr.rdata; o < rr.end; ) {
    if (o + 4 > rr.end) throw new DnsFormatError('EDNS option header runs past the OPT record');
    o += 4 + msg.readUInt16BE(o + 2);
    if (o > rr.end) throw new DnsFormatError('EDNS option runs past the OPT record');
  }
  return { udpPayload: rr.klass, version: (rr.ttl >>> 16) & 0xff, dnssecOk: (rr.ttl & 0x8000) !== 0 };
}

/**
 * A query: exactly one question (RFC 9619), records whose counts and lengths
 * agree with the message, at most one OPT record and only in the additional
 * section (RFC 6891 6.1.1), nothing after the last record. Throws
 * DnsFormatError otherwise. The opcode is not checked here.
 */
export function parseQuery(msg: Buffer): Query {
  if (msg.length < HEADER_BYTES) throw new DnsFormatError('short DNS message');
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  const qdcount = msg.readUInt16BE(4);
  if (qdcount !== 1) throw new DnsFormatError(`${qdcount} questions`);
  const { name, end: nameEnd } = readName(msg, HEADER_BYTES);
  if (nameEnd + 4 > msg.length) throw new DnsFormatError('truncated question');
  const question: Question = { name: name.toLowerCase(), qtype: msg.readUInt16BE(nameEnd), qclass: msg.readUInt16BE(nameEnd + 2), end: nameEnd + 4 };
  const an = msg.readUInt16BE(6);
  const ns = msg.readUInt16BE(8);
  const ar = msg.readUInt16BE(10);
  let off = question.end;
  let edns: Edns | undefined;
  // Each record takes at least 11 bytes, so a count that lies ends the loop
  // at the message's end, not after 65,535 turns.
  for (let i = 0; i < an + ns + ar; i++) {
    const rr = readRecord(msg, off);
    if (rr.type === QTYPE_OPT) {
      if (i < an + ns) throw new DnsFormatError('OPT record outside the additional section');
      if (edns) throw new DnsFormatError('more than one OPT record');
      edns = readOpt(msg, rr);
    }
    off = rr.end;
  }
  if (off !== msg.length) throw new DnsFormatError(`${msg.length - off} bytes after the last record`);
  return { id, flags, question, edns };
}

/** How big an answer to q may be over UDP: 512, or the client's EDNS0 size within [512, max]. */
export function udpLimit(q: Query, max = EDNS_UDP_PAYLOAD_MAX): number {
  if (!q.edns) return UDP_PAYLOAD_CLASSIC;
  return Math.max(UDP_PAYLOAD_CLASSIC, Math.min(q.edns.udpPayload, max));
}

function header(query: Query | { id: number; flags: number }, flags: number, counts: [number, number, number, number]): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt16BE(query.id, 0);
  h.writeUInt16BE(FLAG_QR | (query.flags & (OPCODE_MASK | FLAG_RD)) | flags, 2);
  counts.forEach((c, i) => h.writeUInt16BE(c, 4 + 2 * i));
  return h;
}

/** Our OPT record (RFC 6891 6.1.2): our UDP size, the extended RCODE's high bits, version 0, DO copied. */
function optRecord(edns: Edns, rcode: number, payload: number): Buffer {
  const rr = Buffer.alloc(OPT_RECORD_BYTES);
  rr.writeUInt16BE(QTYPE_OPT, 1);
  rr.writeUInt16BE(payload, 3);
  rr.writeUInt8(rcode >> 4, 5);
  rr.writeUInt16BE(edns.dnssecOk ? 0x8000 : 0, 7);
  return rr;
}

/**
 * A response to query (its id, opcode and RD bit, its question as sent, an
 * OPT record if it had one) with A records, in at most maxBytes. When the
 * records do not all fit, as many whole ones as fit go out and TC is set
 * (RFC 2181 9 allows the partial RRset): a client that follows RFC 1035
 * asks again over TCP, one that ignores TC still gets addresses.
 */
export function buildResponse(
  query: Buffer,
  q: Query,
  rcode: number,
  addrs: string[],
  maxBytes = TCP_MESSAGE_MAX,
  opts: { tc?: boolean; authoritative?: boolean; ednsUdpPayload?: number } = {},
): Buffer {
  const question = query.subarray(HEADER_BYTES, q.question.end);
  const opt = q.edns ? optRecord(q.edns, rcode, opts.ednsUdpPayload ?? EDNS_UDP_PAYLOAD_MAX) : Buffer.alloc(0);
  const room = Math.floor((maxBytes - HEADER_BYTES - question.length - opt.length) / A_RECORD_BYTES);
  const n = Math.max(0, Math.min(addrs.length, room));
  const tc = opts.tc || n < addrs.length;
  const flags = (opts.authoritative === false ? 0 : FLAG_AA) | (tc ? FLAG_TC : 0) | FLAG_RA | (rcode & 0xf);
  const out = Buffer.alloc(HEADER_BYTES + question.length + n * A_RECORD_BYTES + opt.length);
  header(q, flags, [1, n, 0, opt.length ? 1 : 0]).copy(out, 0);
  question.copy(out, HEADER_BYTES);
  let off = HEADER_BYTES + question.length;
  for (let i = 0; i < n; i++, off += A_RECORD_BYTES) {
    out.writeUInt16BE(0xc000 | HEADER_BYTES, off); // pointer to the question's name
    out.writeUInt16BE(QTYPE_A, off + 2);
    out.writeUInt16BE(1, off + 4);
    out.writeUInt32BE(DNS_TTL, off + 6);
    out.writeUInt16BE(4, off + 10);
    addrs[i].split('.').forEach((x, j) => out.writeUInt8(Number(x) & 0xff, off + 12 + j));
  }
  opt.copy(out, off);
  return out;
}

/** A header-only error response (FORMERR, NOTIMP) to a query whose question cannot be trusted. */
export function buildErrorResponse(query: Buffer, rcode: number): Buffer {
  return header({ id: query.readUInt16BE(0), flags: query.readUInt16BE(2) }, FLAG_RA | (rcode & 0xf), [0, 0, 0, 0]);
}

/** A query for name/qtype (tests, benchmarks); with ednsUdpPayload, an OPT record advertising it. */
export function buildQuery(id: number, name: string, qtype = QTYPE_A, opts: { ednsUdpPayload?: number } = {}): Buffer {
  const parts = name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(FLAG_RD, 2);
  h.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(5);
  tail.writeUInt16BE(qtype, 1);
  tail.writeUInt16BE(1, 3);
  if (opts.ednsUdpPayload === undefined) return Buffer.concat([h, ...parts, tail]);
  h.writeUInt16BE(1, 10);
  const opt = Buffer.alloc(OPT_RECORD_BYTES);
  opt.writeUInt16BE(QTYPE_OPT, 1);
  opt.writeUInt16BE(opts.ednsUdpPayload, 3);
  return Buffer.concat([h, ...parts, tail, opt]);
}

/** The header fields of a response. */
export function parseHeader(msg: Buffer): { id: number; qr: boolean; aa: boolean; tc: boolean; rcode: number; qdcount: number; ancount: number; nscount: number; arcount: number } {
  if (msg.length < HEADER_BYTES) throw new DnsFormatError('short DNS message');
  const flags = msg.readUInt16BE(2);
  return {
    id: msg.readUInt16BE(0),
    qr: (flags & FLAG_QR) !== 0,
    aa: (flags & FLAG_AA) !== 0,
    tc: (flags & FLAG_TC) !== 0,
    rcode: flags & 0xf,
    qdcount: msg.readUInt16BE(4),
    ancount: msg.readUInt16BE(6),
    nscount: msg.readUInt16BE(8),
    arcount: msg.readUInt16BE(10),
  };
}

/** rcode and A records of a response (header-only error responses included). */
export function parseResponse(msg: Buffer): { id: number; rcode: number; addrs: string[] } {
  const h = parseHeader(msg);
  let off = HEADER_BYTES;
  for (let i = 0; i < h.qdcount; i++) {
    off = readName(msg, off).end + 4;
    if (off > msg.length) throw new DnsFormatError('truncated question');
  }
  const addrs: string[] = [];
  for (let i = 0; i < h.ancount; i++) {
    const rr = readRecord(msg, off);
    if (rr.type === QTYPE_A && rr.rdlength === 4) addrs.push([...msg.subarray(rr.rdata, rr.rdata + 4)].join('.'));
    off = rr.end;
  }
  return { id: h.id, rcode: h.rcode, addrs };
}

export type Answer = { kind: 'records'; addrs: string[] } | { kind: 'nxdomain' } | { kind: 'forward' };

/** What the server answers from; built by the programmer from NetworkState and local tasks. */
export interface DnsService {
  name: string;
  mode: 'VIP' | 'DNSRR';
  networks: string[];
  vips: { networkId: string; addr: string }[];
  readyAddrs: string[];
  /** Other names of the service, each answered only to tasks on its network (a stack's short names, compose aliases). */
  aliases?: { networkId: string; names: string[] }[];
}

export class DnsTable {
  private readonly services = new Map<string, DnsService>();
  /** alias → the services answering to it, each on one network (several stacks may use the same short name). */
  private readonly aliases = new Map<string, { service: DnsService; networkId: string }[]>();

  /** sourceNets: task address → ids of its networks (unknown sources see every network). */
  /** sourceUpstreams: task address → its --dns servers (the others use the server's upstreams). */
  constructor(
    services: DnsService[],
    private readonly sourceNets: Map<string, Set<string>>,
    private readonly sourceUpstreams: Map<string, string[]> = new Map(),
  ) {
    for (const s of services) this.services.set(s.name.toLowerCase(), s);
    for (const s of services)
      for (const a of s.aliases ?? [])
        for (const n of a.names) {
          const k = n.toLowerCase();
          const list = this.aliases.get(k);
          if (list) list.push({ service: s, networkId: a.networkId });
          else this.aliases.set(k, [{ service: s, networkId: a.networkId }]);
        }
  }

  /** Where the names of `source` that are not answered here are relayed; undefined: the server's upstreams. */
  upstreamsFor(source: string): string[] | undefined {
    return this.sourceUpstreams.get(source);
  }

  static empty(): DnsTable {
    return new DnsTable([], new Map());
  }

  resolve(name: string, source: string): Answer {
    name = name.toLowerCase().replace(/\.$/, '');
    const isTasks = name.startsWith('tasks.');
    const svcName = isTasks ? name.slice('tasks.'.length) : name;
    const s = this.services.get(svcName);
    const nets = this.sourceNets.get(source);
    const shared = s && (!nets || s.networks.some((n) => nets.has(n)));
    if (!s || !shared) {
      // An alias, answered on the network it was given for: `db` from a task of stack app's network is app_db.
      const hit = (this.aliases.get(svcName) ?? []).find((a) => (!nets || nets.has(a.networkId)) && a.service.networks.includes(a.networkId));
      if (hit) {
        if (isTasks || hit.service.mode === 'DNSRR') return { kind: 'records', addrs: hit.service.readyAddrs };
        return { kind: 'records', addrs: hit.service.vips.filter((v) => v.networkId === hit.networkId).map((v) => v.addr) };
      }
      return isTasks || !name.includes('.') ? { kind: 'nxdomain' } : { kind: 'forward' };
    }
    if (isTasks || s.mode === 'DNSRR') return { kind: 'records', addrs: s.readyAddrs };
    return { kind: 'records', addrs: s.vips.filter((v) => !nets || nets.has(v.networkId)).map((v) => v.addr) };
  }
}

export interface DnsServerOptions {
  /** Resolvers other names are relayed to (the host's /etc/resolv.conf). */
  upstreams: string[];
  /** The upstreams' port (tests). */
  upstreamPort?: number;
  /** Overrides of DEFAULT_DNS_LIMITS. */
  limits?: Partial<DnsLimits>;
  logger?: Logger;
}

/** Counters since the server was made (tests, debugging). */
export interface DnsStats {
  udpQueries: number;
  tcpQueries: number;
  /** Answers sent with TC set. */
  truncated: number;
  formerr: number;
  /** REFUSED for a relaying limit. */
  refused: number;
  /** UDP queries dropped: unreadable, a response, or over maxInflightPerSource. */
  dropped: number;
  /** Times a TCP connection stopped being read because its source had maxInflightPerSource queries in flight. */
  tcpPaused: number;
  /** TCP connections closed at accept (connection limits) or for a length over maxQueryBytes. */
  tcpRejected: number;
  tcpIdleClosed: number;
}

/** What a source holds right now; a source holding nothing is forgotten. */
interface SourceLoad {
  inflight: number;
  forwards: number;
  tcpConns: number;
  /** Its TCP connections waiting for an in-flight query to finish before reading on. */
  waiting: Set<() => void>;
}

export class DnsServer {
  private table = DnsTable.empty();
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly tcpSockets = new Set<net.Socket>();
  private readonly sources = new Map<string, SourceLoad>();
  private forwardsTotal = 0;
  private readonly log: Logger;
  private readonly limits: DnsLimits;
  private bound: string | undefined;
  private boundPort: number | undefined;
  readonly stats: DnsStats = { udpQueries: 0, tcpQueries: 0, truncated: 0, formerr: 0, refused: 0, dropped: 0, tcpPaused: 0, tcpRejected: 0, tcpIdleClosed: 0 };

  constructor(private readonly opts: DnsServerOptions) {
    this.log = opts.logger ?? nullLogger;
    this.limits = { ...DEFAULT_DNS_LIMITS, ...opts.limits };
  }

  setTable(t: DnsTable): void {
    this.table = t;
  }

  get address(): string | undefined {
    return this.bound;
  }

  /** The port listened on (the chosen one after listen(addr, 0)). */
  get port(): number | undefined {
    return this.boundPort;
  }

  /** What the server holds right now (tests): queries in flight, relayed queries, TCP connections, sources tracked. */
  load(): { inflight: number; forwards: number; tcpConns: number; sources: number } {
    let inflight = 0;
    for (const s of this.sources.values()) inflight += s.inflight;
    return { inflight, forwards: this.forwardsTotal, tcpConns: this.tcpSockets.size, sources: this.sources.size };
  }

  /**
   * Listens on addr:port (UDP and TCP); a second call with another address
   * moves it. Port 0: one free port for both.
   */
  async listen(addr: string, port = DNS_PORT): Promise<void> {
    if (this.bound === `${addr}:${port}` || (port === 0 && this.bound?.startsWith(`${addr}:`))) return;
    await this.close();
    // With port 0 the UDP socket picks a port the TCP one may find taken: try a few.
    for (let attempt = 1; ; attempt++) {
      const udp = dgram.createSocket('udp4');
      udp.on('message', (msg, rinfo) => this.onUdp(udp, msg, rinfo));
      udp.on('error', (e) => this.log.warn('dns socket error', { err: e.message }));
      await new Promise<void>((res, rej) => {
        udp.once('error', rej);
        udp.bind(port, addr, () => {
          udp.off('error', rej);
          res();
        });
      }).catch((e: unknown) => {
        try {
          udp.close();
        } catch {
          // never bound: nothing to close
        }
        throw e;
      });
      const chosen = udp.address().port;
      const tcp = net.createServer((sock) => this.serveTcp(sock));
      tcp.on('error', (e) => this.log.warn('dns tcp server error', { err: e.message }));
      try {
        await new Promise<void>((res, rej) => {
          tcp.once('error', rej);
          tcp.listen(chosen, addr, () => {
            tcp.off('error', rej);
            res();
          });
        });
      } catch (e) {
        await new Promise<void>((r) => udp.close(() => r()));
        if (port !== 0 || attempt >= 5) throw e;
        continue;
      }
      this.udp = udp;
      this.tcp = tcp;
      this.bound = `${addr}:${port}`;
      this.boundPort = chosen;
      this.log.info('dns listening', { addr, port: chosen });
      return;
    }
  }

  private sourceOf(source: string): SourceLoad {
    let s = this.sources.get(source);
    if (!s) this.sources.set(source, (s = { inflight: 0, forwards: 0, tcpConns: 0, waiting: new Set() }));
    return s;
  }

  /** Forgets a source holding nothing (the map is as big as the active sources, not all ever seen). */
  private settle(source: string, s: SourceLoad): void {
    if (s.inflight === 0 && s.forwards === 0 && s.tcpConns === 0 && s.waiting.size === 0) this.sources.delete(source);
  }

  /** One of source's queries left flight: its TCP connections that waited read on. */
  private landed(source: string, s: SourceLoad): void {
    s.inflight--;
    for (const resume of [...s.waiting]) {
      if (s.inflight >= this.limits.maxInflightPerSource) break;
      s.waiting.delete(resume);
      resume();
    }
    this.settle(source, s);
  }

  private onUdp(udp: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.stats.udpQueries++;
    const s = this.sourceOf(rinfo.address);
    if (s.inflight >= this.limits.maxInflightPerSource) {
      this.stats.dropped++;
      this.settle(rinfo.address, s);
      return;
    }
    s.inflight++;
    let done = false;
    const land = () => {
      if (done) return;
      done = true;
      this.landed(rinfo.address, s);
    };
    this.answer(msg, rinfo.address, false)
      .then((res) => {
        if (!res || this.udp !== udp) {
          if (!res) this.stats.dropped++;
          return land();
        }
        try {
          udp.send(res, rinfo.port, rinfo.address, land);
        } catch {
          land(); // closed meanwhile
        }
      })
      .catch((e) => {
        this.log.warn('dns query failed', { err: errMsg(e), 'dns.source': rinfo.address });
        land();
      });
  }

  /**
   * RFC 7766: queries framed by a 2-byte length, possibly several per segment
   * or one split across several (the length itself too), answered in any
   * order as they complete.
   */
  private serveTcp(sock: net.Socket): void {
    const source = (sock.remoteAddress ?? '').replace(/^::ffff:/, '');
    sock.on('error', () => undefined);
    const s = this.sourceOf(source);
    if (this.tcpSockets.size >= this.limits.maxTcpConnsTotal || s.tcpConns >= this.limits.maxTcpConnsPerSource) {
      this.stats.tcpRejected++;
      this.settle(source, s);
      sock.destroy();
      return;
    }
    s.tcpConns++;
    this.tcpSockets.add(sock);
    let buf: Buffer = Buffer.alloc(0);
    let pending = 0; // this connection's queries in flight
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      clearTimeout(idle);
      if (sock.destroyed) return; // an answer landing after the close
      idle = setTimeout(() => {
        if (pending > 0) return armIdle();
        this.stats.tcpIdleClosed++;
        sock.destroy();
      }, this.limits.tcpIdleTimeoutMs);
    };
    const resume = () => {
      if (!sock.destroyed) pump();
    };
    const pump = (): void => {
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (len > this.limits.maxQueryBytes) {
          // Not worth reading on: nothing after it can be trusted to be framed.
          this.stats.tcpRejected++;
          sock.destroy();
          return;
        }
        if (buf.length < 2 + len) break;
        if (s.inflight >= this.limits.maxInflightPerSource) {
          this.stats.tcpPaused++;
          s.waiting.add(resume);
          sock.pause();
          return;
        }
        const msg = Buffer.from(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        this.stats.tcpQueries++;
        armIdle();
        s.inflight++;
        pending++;
        let done = false;
        const land = () => {
          if (done) return;
          done = true;
          pending--;
          armIdle();
          this.landed(source, s);
        };
        this.answer(msg, source, true)
          .then((res) => {
            if (!res || sock.destroyed) return land();
            const frame = Buffer.alloc(2 + res.length);
            frame.writeUInt16BE(res.length, 0);
            res.copy(frame, 2);
            // Counted in flight until the kernel took it: a client that pipelines
            // and never reads stops being read, instead of filling our memory.
            sock.write(frame, land);
          })
          .catch((e) => {
            this.log.warn('dns query failed', { err: errMsg(e), 'dns.source': source });
            land();
          });
      }
      if (sock.isPaused()) sock.resume();
    };
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      pump();
    });
    sock.on('close', () => {
      clearTimeout(idle);
      this.tcpSockets.delete(sock);
      s.waiting.delete(resume);
      s.tcpConns--;
      this.settle(source, s);
    });
    armIdle();
  }

  /**
   * The response to one query from source (undefined = drop it): the table's
   * answer, truncated to what UDP carries unless tcp, or the upstream's.
   * Never throws for what the message contains.
   */
  async answer(msg: Buffer, source: string, tcp = false): Promise<Buffer | undefined> {
    // Too short to hold an id, or a response (answering responses lets two
    // servers bounce a packet forever): nothing to answer.
    if (msg.length < HEADER_BYTES || (msg.readUInt16BE(2) & FLAG_QR) !== 0) return undefined;
    if (msg.length > this.limits.maxQueryBytes) return this.formerr(msg);
    if ((msg.readUInt16BE(2) & OPCODE_MASK) !== 0) return buildErrorResponse(msg, RCODE_NOTIMP);
    let q: Query;
    try {
      q = parseQuery(msg);
    } catch (e) {
      if (!(e instanceof DnsFormatError)) throw e;
      return this.formerr(msg);
    }
    const limit = tcp ? TCP_MESSAGE_MAX : udpLimit(q, this.limits.ednsUdpPayloadMax);
    if (q.edns && q.edns.version !== 0) return this.respond(msg, q, RCODE_BADVERS, [], limit);
    const a = this.table.resolve(q.question.name, source);
    if (a.kind === 'nxdomain') return this.respond(msg, q, RCODE_NXDOMAIN, [], limit);
    if (a.kind === 'records') {
      const res = this.respond(msg, q, RCODE_NOERROR, q.question.qtype === QTYPE_A ? a.addrs : [], limit);
      if (res[2] & (FLAG_TC >> 8)) this.stats.truncated++;
      return res;
    }
    return this.relay(msg, q, source, tcp, limit);
  }

  /** buildResponse advertising our UDP size. */
  private respond(msg: Buffer, q: Query, rcode: number, addrs: string[], limit: number, opts: { tc?: boolean; authoritative?: boolean } = {}): Buffer {
    return buildResponse(msg, q, rcode, addrs, limit, { ...opts, ednsUdpPayload: this.limits.ednsUdpPayloadMax });
  }

  private formerr(msg: Buffer): Buffer {
    this.stats.formerr++;
    return buildErrorResponse(msg, RCODE_FORMERR);
  }

  /** Relays q to the upstreams within the relaying limits; REFUSED over them, SERVFAIL when none answers. */
  private async relay(msg: Buffer, q: Query, source: string, tcp: boolean, limit: number): Promise<Buffer> {
    const s = this.sourceOf(source);
    if (s.forwards >= this.limits.maxForwardsPerSource || this.forwardsTotal >= this.limits.maxForwardsTotal) {
      this.stats.refused++;
      this.log.debug('dns relay refused', { 'dns.source': source, 'dns.forwards': s.forwards, 'dns.forwards_total': this.forwardsTotal });
      this.settle(source, s);
      return this.respond(msg, q, RCODE_REFUSED, [], limit, { authoritative: false });
    }
    s.forwards++;
    this.forwardsTotal++;
    try {
      const port = this.opts.upstreamPort ?? DNS_PORT;
      const timeout = this.limits.forwardTimeoutMs;
      for (const up of this.table.upstreamsFor(source) ?? this.opts.upstreams) {
        const res = await (tcp ? forwardTcp(msg, up, port, timeout) : forwardUdp(msg, up, port, timeout)).catch(() => undefined);
        if (!res) continue;
        if (res.length <= limit) return res;
        // An upstream that ignored the client's size: TC, so the client asks over TCP.
        this.stats.truncated++;
        return this.respond(msg, q, res.readUInt16BE(2) & 0xf, [], limit, { tc: true, authoritative: false });
      }
      return this.respond(msg, q, RCODE_SERVFAIL, [], limit);
    } finally {
      s.forwards--;
      this.forwardsTotal--;
      this.settle(source, s);
    }
  }

  async close(): Promise<void> {
    const { udp, tcp } = this;
    this.udp = this.tcp = this.bound = this.boundPort = undefined;
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
    // tcp.close() waits for every connection to end: end them.
    for (const sock of this.tcpSockets) sock.destroy();
    if (tcp) await new Promise<void>((r) => tcp.close(() => r()));
  }
}

/** Whether res answers query: a response with the query's id. */
function answers(res: Buffer, query: Buffer): boolean {
  return res.length >= HEADER_BYTES && res.readUInt16BE(0) === query.readUInt16BE(0) && (res.readUInt16BE(2) & FLAG_QR) !== 0;
}

function forwardUdp(msg: Buffer, upstream: string, port: number, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(net.isIPv6(upstream) ? 'udp6' : 'udp4');
    let finished = false;
    const done = (b: Buffer | undefined) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      s.close();
      resolve(b);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    s.on('error', () => done(undefined));
    // Only the upstream's answer to this query; anything else on the port is ignored.
    s.on('message', (b, rinfo) => {
      if (rinfo.port === port && rinfo.address === upstream && answers(b, msg)) done(b);
    });
    s.send(msg, port, upstream, (e) => {
      if (e) done(undefined);
    });
  });
}

function forwardTcp(msg: Buffer, upstream: string, port: number, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = net.connect(port, upstream);
    let buf = Buffer.alloc(0);
    let finished = false;
    const done = (b: Buffer | undefined) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      s.destroy();
      resolve(b);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    s.on('error', () => done(undefined));
    s.on('close', () => done(undefined));
    s.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      s.write(Buffer.concat([len, msg]));
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const res = buf.subarray(2, 2 + buf.readUInt16BE(0));
        done(answers(res, msg) ? Buffer.from(res) : undefined);
      }
    });
  });
}
