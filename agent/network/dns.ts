// Service discovery: a small DNS server on the bridge address (:53, UDP and
// TCP) of every host. Answers, per the asking container's networks:
//   <service>        A → the service's VIP on the networks both share
//                    (DNSRR mode: the ready tasks' addresses)
//   tasks.<service>  A → the ready tasks' addresses
// A single-label name or tasks.<x> that is no service the container can see
// → NXDOMAIN; anything else is relayed unchanged to the host's resolvers.
// The wire format is the small part of RFC 1035 this needs (no dependency).
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import type { Logger } from '../../common/logger';
import { nullLogger } from '../../common/logger';

export const DNS_PORT = 53;
/** Answers are for now: scaling and failover must show at once. */
export const DNS_TTL = 0;
/** How long a relayed query waits for the upstream before the next one is tried. */
export const FORWARD_TIMEOUT_MS = 2000;

export const QTYPE_A = 1;
export const QTYPE_AAAA = 28;
export const RCODE_NOERROR = 0;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;

export interface Question {
  name: string; // lower case, no trailing dot
  qtype: number;
  qclass: number;
  /** Byte offset just after the question section. */
  end: number;
}

export function parseQuery(msg: Buffer): { id: number; flags: number; question: Question } {
  if (msg.length < 12) throw new Error('short DNS message');
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  if (msg.readUInt16BE(4) < 1) throw new Error('no question');
  let off = 12;
  const labels: string[] = [];
  for (;;) {
    if (off >= msg.length) throw new Error('truncated name');
    const len = msg[off];
    if (len === 0) {
      off++;
      break;
    }
    if (len & 0xc0) throw new Error('compressed name in question');
    labels.push(msg.subarray(off + 1, off + 1 + len).toString('latin1'));
    off += 1 + len;
  }
  if (off + 4 > msg.length) throw new Error('truncated question');
  return { id, flags, question: { name: labels.join('.').toLowerCase(), qtype: msg.readUInt16BE(off), qclass: msg.readUInt16BE(off + 2), end: off + 4 } };
}

/** A response to query (its id, RD bit and first question copied) with A records. */
export function buildResponse(query: Buffer, q: Question, rcode: number, addrs: string[]): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  const rd = query.readUInt16BE(2) & 0x0100;
  header.writeUInt16BE(0x8000 | 0x0400 | rd | 0x0080 | rcode, 2); // QR, AA, RD (copied), RA
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(addrs.length, 6);
  const question = query.subarray(12, q.end);
  const answers = addrs.map((a) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    rr.writeUInt16BE(QTYPE_A, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(DNS_TTL, 6);
    rr.writeUInt16BE(4, 10);
    a.split('.').forEach((x, i) => rr.writeUInt8(Number(x), 12 + i));
    return rr;
  });
  return Buffer.concat([header, question, ...answers]);
}

/** A query for name/qtype (tests, benchmarks). */
export function buildQuery(id: number, name: string, qtype = QTYPE_A): Buffer {
  const parts = name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(0x0100, 2);
  h.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(5);
  tail.writeUInt16BE(qtype, 1);
  tail.writeUInt16BE(1, 3);
  return Buffer.concat([h, ...parts, tail]);
}

/** rcode and A records of a response. */
export function parseResponse(msg: Buffer): { id: number; rcode: number; addrs: string[] } {
  const { id, question } = parseQuery(msg);
  const an = msg.readUInt16BE(6);
  let off = question.end;
  const addrs: string[] = [];
  for (let i = 0; i < an; i++) {
    // name: pointer or labels
    while (msg[off] !== 0 && (msg[off] & 0xc0) !== 0xc0) off += 1 + msg[off];
    off += msg[off] === 0 ? 1 : 2;
    const type = msg.readUInt16BE(off);
    const rdlen = msg.readUInt16BE(off + 8);
    if (type === QTYPE_A && rdlen === 4) addrs.push([...msg.subarray(off + 10, off + 14)].join('.'));
    off += 10 + rdlen;
  }
  return { id, rcode: msg.readUInt16BE(2) & 0xf, addrs };
}

export type Answer = { kind: 'records'; addrs: string[] } | { kind: 'nxdomain' } | { kind: 'forward' };

/** What the server answers from; built by the programmer from NetworkState and local tasks. */
export interface DnsService {
  name: string;
  mode: 'VIP' | 'DNSRR';
  networks: string[];
  vips: { networkId: string; addr: string }[];
  readyAddrs: string[];
}

export class DnsTable {
  private readonly services = new Map<string, DnsService>();

  /** sourceNets: task address → ids of its networks (unknown sources see every network). */
  constructor(services: DnsService[], private readonly sourceNets: Map<string, Set<string>>) {
    for (const s of services) this.services.set(s.name.toLowerCase(), s);
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
    if (!s || !shared) return isTasks || !name.includes('.') ? { kind: 'nxdomain' } : { kind: 'forward' };
    if (isTasks || s.mode === 'DNSRR') return { kind: 'records', addrs: s.readyAddrs };
    return { kind: 'records', addrs: s.vips.filter((v) => !nets || nets.has(v.networkId)).map((v) => v.addr) };
  }
}

export interface DnsServerOptions {
  /** Resolvers other names are relayed to (the host's /etc/resolv.conf). */
  upstreams: string[];
  logger?: Logger;
}

export class DnsServer {
  private table = DnsTable.empty();
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly log: Logger;
  private bound: string | undefined;

  constructor(private readonly opts: DnsServerOptions) {
    this.log = opts.logger ?? nullLogger;
  }

  setTable(t: DnsTable): void {
    this.table = t;
  }

  get address(): string | undefined {
    return this.bound;
  }

  /** Listens on addr:port (UDP and TCP); a second call with another address moves it. */
  async listen(addr: string, port = DNS_PORT): Promise<void> {
    if (this.bound === `${addr}:${port}`) return;
    await this.close();
    const udp = dgram.createSocket('udp4');
    udp.on('message', (msg, rinfo) => {
      void this.answer(msg, rinfo.address).then((res) => {
        if (res) udp.send(res, rinfo.port, rinfo.address);
      });
    });
    udp.on('error', (e) => this.log.warn('dns socket error', { err: e.message }));
    await new Promise<void>((res, rej) => {
      udp.once('error', rej);
      udp.bind(port, addr, () => {
        udp.off('error', rej);
        res();
      });
    });
    const tcp = net.createServer((sock) => this.serveTcp(sock));
    await new Promise<void>((res, rej) => {
      tcp.once('error', rej);
      tcp.listen(port, addr, () => res());
    });
    this.udp = udp;
    this.tcp = tcp;
    this.bound = `${addr}:${port}`;
    this.log.info('dns listening', { addr, port });
  }

  private serveTcp(sock: net.Socket): void {
    let buf = Buffer.alloc(0);
    sock.on('error', () => undefined);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        void this.answer(Buffer.from(msg), sock.remoteAddress?.replace(/^::ffff:/, '') ?? '', true).then((res) => {
          if (!res || sock.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(res.length);
          sock.write(Buffer.concat([len, res]));
        });
      }
    });
  }

  /** The response to one query from source (undefined = drop it). */
  async answer(msg: Buffer, source: string, tcp = false): Promise<Buffer | undefined> {
    let parsed;
    try {
      parsed = parseQuery(msg);
    } catch {
      return undefined;
    }
    const q = parsed.question;
    const a = this.table.resolve(q.name, source);
    if (a.kind === 'nxdomain') return buildResponse(msg, q, RCODE_NXDOMAIN, []);
    if (a.kind === 'records') return buildResponse(msg, q, RCODE_NOERROR, q.qtype === QTYPE_A ? a.addrs : []);
    const relayed = await this.forward(msg, tcp);
    return relayed ?? buildResponse(msg, q, RCODE_SERVFAIL, []);
  }

  private async forward(msg: Buffer, tcp: boolean): Promise<Buffer | undefined> {
    for (const up of this.opts.upstreams) {
      const res = await (tcp ? forwardTcp(msg, up) : forwardUdp(msg, up)).catch(() => undefined);
      if (res) return res;
    }
    return undefined;
  }

  async close(): Promise<void> {
    const { udp, tcp } = this;
    this.udp = this.tcp = this.bound = undefined;
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
    if (tcp) await new Promise<void>((r) => tcp.close(() => r()));
  }
}

function forwardUdp(msg: Buffer, upstream: string, port = DNS_PORT): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const done = (b: Buffer | undefined) => {
      clearTimeout(timer);
      s.close();
      resolve(b);
    };
    const timer = setTimeout(() => done(undefined), FORWARD_TIMEOUT_MS);
    s.on('error', () => done(undefined));
    s.on('message', (b) => done(b));
    s.send(msg, port, upstream);
  });
}

function forwardTcp(msg: Buffer, upstream: string, port = DNS_PORT): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = net.connect(port, upstream);
    let buf = Buffer.alloc(0);
    const done = (b: Buffer | undefined) => {
      clearTimeout(timer);
      s.destroy();
      resolve(b);
    };
    const timer = setTimeout(() => done(undefined), FORWARD_TIMEOUT_MS);
    s.on('error', () => done(undefined));
    s.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      s.write(Buffer.concat([len, msg]));
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
  });
}
