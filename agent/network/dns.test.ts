// DNS answers per asking container: names scoped to shared networks, tasks.<service>, DNSRR, relaying;
// truncation over UDP and whole answers over TCP; per-source limits; hostile packets.
import { strict as assert } from 'node:assert';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import {
  DnsServer,
  DnsTable,
  DnsFormatError,
  DEFAULT_DNS_LIMITS,
  type DnsLimits,
  buildQuery,
  parseHeader,
  parseResponse,
  readName,
  EDNS_UDP_PAYLOAD_MAX,
  QTYPE_A,
  QTYPE_OPT,
  RCODE_BADVERS,
  RCODE_FORMERR,
  RCODE_NOTIMP,
  RCODE_NXDOMAIN,
  RCODE_NOERROR,
  RCODE_REFUSED,
  RCODE_SERVFAIL,
} from './dns';
import { eventually } from '../../common/eventually';

const table = new DnsTable(
  [
    { name: 'web', mode: 'VIP', networks: ['a'], vips: [{ networkId: 'a', addr: '10.43.0.2' }], readyAddrs: ['10.42.1.2', '10.42.2.2'] },
    { name: 'db', mode: 'DNSRR', networks: ['b'], vips: [], readyAddrs: ['10.42.3.2'] },
  ],
  new Map([
    ['10.42.9.1', new Set(['a'])],
    ['10.42.9.2', new Set(['b'])],
  ]),
);

describe('DNS table', () => {
  it('answers a service with its VIP and tasks.<service> with the ready tasks, for a container on its network', () => {
    assert.deepEqual(table.resolve('web', '10.42.9.1'), { kind: 'records', addrs: ['10.43.0.2'] });
    assert.deepEqual(table.resolve('WEB.', '10.42.9.1'), { kind: 'records', addrs: ['10.43.0.2'] });
    assert.deepEqual(table.resolve('tasks.web', '10.42.9.1'), { kind: 'records', addrs: ['10.42.1.2', '10.42.2.2'] });
  });

  it('answers a DNSRR service with its task addresses', () => {
    assert.deepEqual(table.resolve('db', '10.42.9.2'), { kind: 'records', addrs: ['10.42.3.2'] });
  });

  it('hides services of other networks, and relays dotted names it does not know', () => {
    assert.deepEqual(table.resolve('db', '10.42.9.1'), { kind: 'nxdomain' });
    assert.deepEqual(table.resolve('tasks.db', '10.42.9.1'), { kind: 'nxdomain' });
    assert.deepEqual(table.resolve('example.org', '10.42.9.1'), { kind: 'forward' });
  });

  it("answers an alias (a stack service's short name) only to tasks on the network it was given for", () => {
    // Two stacks, each with its own "db" on its own network.
    const t = new DnsTable(
      [
        { name: 'app_db', mode: 'VIP', networks: ['n1'], vips: [{ networkId: 'n1', addr: '10.43.0.7' }], readyAddrs: ['10.42.1.7'], aliases: [{ networkId: 'n1', names: ['db', 'database'] }] },
        { name: 'other_db', mode: 'VIP', networks: ['n2'], vips: [{ networkId: 'n2', addr: '10.43.0.8' }], readyAddrs: ['10.42.1.8'], aliases: [{ networkId: 'n2', names: ['db'] }] },
      ],
      new Map([
        ['10.42.9.1', new Set(['n1'])],
        ['10.42.9.2', new Set(['n2'])],
        ['10.42.9.3', new Set(['n3'])],
      ]),
    );
    assert.deepEqual(t.resolve('db', '10.42.9.1'), { kind: 'records', addrs: ['10.43.0.7'] });
    assert.deepEqual(t.resolve('DATABASE', '10.42.9.1'), { kind: 'records', addrs: ['10.43.0.7'] });
    assert.deepEqual(t.resolve('tasks.db', '10.42.9.1'), { kind: 'records', addrs: ['10.42.1.7'] });
    assert.deepEqual(t.resolve('db', '10.42.9.2'), { kind: 'records', addrs: ['10.43.0.8'] });
    assert.deepEqual(t.resolve('db', '10.42.9.3'), { kind: 'nxdomain' }, 'a task on neither network');
    assert.deepEqual(t.resolve('app_db', '10.42.9.1'), { kind: 'records', addrs: ['10.43.0.7'] }, 'the full name still answers');
  });

  it('encodes answers on the wire; with no upstream a relayed name fails with SERVFAIL, not silence', async () => {
    const srv = new DnsServer({ upstreams: [] });
    srv.setTable(table);
    const ok = parseResponse((await srv.answer(buildQuery(1, 'tasks.web'), '10.42.9.1'))!);
    assert.deepEqual(ok, { id: 1, rcode: RCODE_NOERROR, addrs: ['10.42.1.2', '10.42.2.2'] });
    assert.equal(parseResponse((await srv.answer(buildQuery(2, 'db'), '10.42.9.1'))!).rcode, RCODE_NXDOMAIN);
    assert.equal(parseResponse((await srv.answer(buildQuery(3, 'example.org'), '10.42.9.1'))!).rcode, 2);
    assert.equal(await srv.answer(Buffer.from([1, 2, 3]), '10.42.9.1'), undefined);
  });
});

// ---- RFC 1035 over UDP and TCP, limits, hostile packets ----------------------

/** 100 task addresses for tasks.web. */
const hundred = Array.from({ length: 100 }, (_, i) => `10.42.${1 + (i >> 6)}.${2 + (i & 63)}`);
const bigTable = new DnsTable([{ name: 'web', mode: 'VIP', networks: ['a'], vips: [{ networkId: 'a', addr: '10.43.0.2' }], readyAddrs: hundred }], new Map());

function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

/** A UDP client on 127.0.0.1 collecting responses by id. */
async function udpClient(): Promise<{ send(msg: Buffer, port: number): void; got: Map<number, Buffer>; close(): void }> {
  const s = dgram.createSocket('udp4');
  const got = new Map<number, Buffer>();
  s.on('message', (m) => got.set(m.readUInt16BE(0), m));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return { send: (msg, port) => s.send(msg, port, '127.0.0.1'), got, close: () => s.close() };
}

/** A TCP client collecting framed responses by id; closed tells whether the server closed it. */
async function tcpClient(port: number): Promise<{ sock: net.Socket; got: Map<number, Buffer>; closed: () => boolean }> {
  const sock = net.connect(port, '127.0.0.1');
  const got = new Map<number, Buffer>();
  let buf = Buffer.alloc(0);
  let closed = false;
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      const m = buf.subarray(2, 2 + buf.readUInt16BE(0));
      got.set(m.readUInt16BE(0), Buffer.from(m));
      buf = buf.subarray(2 + m.length);
    }
  });
  sock.on('error', () => undefined);
  sock.on('close', () => (closed = true));
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  return { sock, got, closed: () => closed };
}

/**
 * An upstream resolver on 127.0.0.1 (UDP and TCP, one port) that holds every
 * query until release(), then answers each with NOERROR: size bytes long,
 * or with another id (a forged answer).
 */
async function fakeUpstream(): Promise<{ port: number; held: () => number; release(o?: { size?: number; id?: number }): void; close(): Promise<void> }> {
  let pending: { q: Buffer; send: (r: Buffer) => void }[] = [];
  const reply = (q: Buffer, o: { size?: number; id?: number }) => {
    const r = Buffer.concat([q, Buffer.alloc(Math.max(0, (o.size ?? 0) - q.length))]);
    r.writeUInt16BE(q.readUInt16BE(2) | 0x8080, 2);
    if (o.id !== undefined) r.writeUInt16BE(o.id, 0);
    return r;
  };
  const socks = new Set<net.Socket>();
  // The UDP port is the kernel's pick; another process may hold it for TCP: pick again.
  let udp: dgram.Socket, tcp: net.Server, port: number;
  for (let attempt = 1; ; attempt++) {
    const u = dgram.createSocket('udp4');
    u.on('message', (q, rinfo) => pending.push({ q, send: (r) => u.send(r, rinfo.port, rinfo.address) }));
    await new Promise<void>((r) => u.bind(0, '127.0.0.1', () => r()));
    const p = u.address().port;
    const t = net.createServer((sock) => {
      socks.add(sock);
      sock.on('error', () => undefined);
      sock.on('close', () => socks.delete(sock));
      // forwardTcp writes a query in one segment.
      sock.on('data', (d: Buffer) => pending.push({ q: Buffer.from(d.subarray(2, 2 + d.readUInt16BE(0))), send: (r) => sock.write(frame(r)) }));
    });
    const bound = await new Promise<boolean>((r) => {
      t.once('error', () => r(false));
      t.listen(p, '127.0.0.1', () => r(true));
    });
    if (bound) {
      [udp, tcp, port] = [u, t, p];
      break;
    }
    u.close();
    if (attempt >= 20) throw new Error('fakeUpstream: no port free for both UDP and TCP');
  }
  return {
    port,
    held: () => pending.length,
    release(o = {}) {
      const now = pending;
      pending = [];
      for (const p of now) p.send(reply(p.q, o));
    },
    async close() {
      udp.close();
      for (const s of socks) s.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
    },
  };
}

describe('DNS truncation (RFC 1035 4.2.1, RFC 6891) and TCP', () => {
  const srv = new DnsServer({ upstreams: [] });
  srv.setTable(bigTable);

  it('over UDP without EDNS sends 100 A records as a 512-byte answer with TC and whole records; over TCP all 100', async () => {
    const udp = (await srv.answer(buildQuery(1, 'tasks.web'), '10.42.9.1'))!;
    const h = parseHeader(udp);
    assert.ok(udp.length <= 512, `${udp.length} bytes`);
    assert.equal(h.tc, true);
    assert.equal(h.qdcount, 1);
    assert.equal(h.arcount, 0);
    const partial = parseResponse(udp);
    assert.equal(partial.addrs.length, h.ancount);
    assert.equal(partial.addrs.length, 30); // (512 - 12 - 15) / 16 whole records
    assert.deepEqual(partial.addrs, hundred.slice(0, 30));
    const tcp = (await srv.answer(buildQuery(2, 'tasks.web'), '10.42.9.1', true))!;
    assert.equal(parseHeader(tcp).tc, false);
    assert.deepEqual(parseResponse(tcp).addrs, hundred);
  });

  it("fits the client's EDNS0 size, capped at 1232, never under 512, and keeps the OPT record", async () => {
    const sizes: [number, number][] = [
      [4096, 1232],
      [1232, 1232],
      [800, 800],
      [100, 512],
    ];
    for (const [advertised, limit] of sizes) {
      const res = (await srv.answer(buildQuery(3, 'tasks.web', QTYPE_A, { ednsUdpPayload: advertised }), '10.42.9.1'))!;
      const h = parseHeader(res);
      assert.ok(res.length <= limit && res.length > limit - 16, `advertised ${advertised}: ${res.length} bytes`);
      assert.equal(h.tc, true);
      assert.equal(h.arcount, 1, 'OPT record in the answer');
      assert.equal(res.readUInt16BE(res.length - 10), QTYPE_OPT);
      assert.equal(res.readUInt16BE(res.length - 8), EDNS_UDP_PAYLOAD_MAX, 'our UDP size advertised');
      assert.deepEqual(parseResponse(res).addrs, hundred.slice(0, h.ancount));
    }
  });

  it('sends an answer that fits without TC; ednsUdpPayloadMax raises the cap', async () => {
    const small = (await srv.answer(buildQuery(4, 'web'), '10.42.9.1'))!;
    assert.equal(parseHeader(small).tc, false);
    const wide = new DnsServer({ upstreams: [], limits: { ednsUdpPayloadMax: 4096 } });
    wide.setTable(bigTable);
    const res = (await wide.answer(buildQuery(5, 'tasks.web', QTYPE_A, { ednsUdpPayload: 4096 }), '10.42.9.1'))!;
    assert.equal(parseHeader(res).tc, false);
    assert.equal(parseResponse(res).addrs.length, 100);
  });

  it('answers an EDNS version it does not speak with BADVERS (RFC 6891 6.1.3)', async () => {
    const q = buildQuery(6, 'web', QTYPE_A, { ednsUdpPayload: 1232 });
    q.writeUInt8(1, q.length - 5); // OPT TTL byte 2: version 1
    const res = (await srv.answer(q, '10.42.9.1'))!;
    assert.equal(parseHeader(res).rcode, RCODE_BADVERS & 0xf);
    assert.equal(res.readUInt8(res.length - 6), RCODE_BADVERS >> 4, 'extended RCODE in the OPT record');
  });

  describe('on sockets', () => {
    const live = new DnsServer({ upstreams: [] });
    live.setTable(bigTable);
    before(() => live.listen('127.0.0.1', 0));
    after(() => live.close());

    it('over UDP truncates, over TCP sends all 100: pipelined queries, one split across segments, the length prefix split', async () => {
      const port = live.port!;
      const u = await udpClient();
      try {
        u.send(buildQuery(10, 'tasks.web'), port);
        await eventually(() => u.got.has(10), 'UDP answer');
        assert.equal(parseHeader(u.got.get(10)!).tc, true);
      } finally {
        u.close();
      }
      const t = await tcpClient(port);
      try {
        // Three queries in one segment.
        t.sock.write(Buffer.concat([11, 12, 13].map((id) => frame(buildQuery(id, 'tasks.web')))));
        await eventually(() => [11, 12, 13].every((id) => t.got.has(id)), 'three pipelined answers');
        for (const id of [11, 12, 13]) assert.deepEqual(parseResponse(t.got.get(id)!).addrs, hundred);
        // One query a byte at a time (the length prefix split too), then two
        // queries whose boundary splits the second's length prefix.
        const one = frame(buildQuery(14, 'tasks.web'));
        for (const b of one) {
          t.sock.write(Buffer.from([b]));
          await new Promise((r) => setImmediate(r));
        }
        await eventually(() => t.got.has(14), 'answer to a query sent byte by byte');
        const two = Buffer.concat([frame(buildQuery(15, 'web')), frame(buildQuery(16, 'tasks.web'))]);
        const cut = frame(buildQuery(15, 'web')).length + 1;
        t.sock.write(two.subarray(0, cut));
        await eventually(() => t.got.has(15), 'first of two');
        t.sock.write(two.subarray(cut));
        await eventually(() => t.got.has(16), 'second of two');
        assert.deepEqual(parseResponse(t.got.get(15)!).addrs, ['10.43.0.2']);
        assert.equal(parseResponse(t.got.get(16)!).addrs.length, 100);
      } finally {
        t.sock.destroy();
      }
      await eventually(() => live.load().tcpConns === 0 && live.load().sources === 0, 'nothing held after the client left');
    });

    it('answers the next query after hostile packets on both transports', async () => {
      const port = live.port!;
      const u = await udpClient();
      const t = await tcpClient(port);
      try {
        for (const junk of [Buffer.alloc(0), Buffer.from([1, 2, 3]), Buffer.from('c00c0000000100000000000000c00c', 'hex')]) u.send(junk, port);
        t.sock.write(frame(Buffer.from([0, 1, 2, 3, 4])));
        t.sock.write(frame(Buffer.from('00070000000100000000000000c00c00010001', 'hex')));
        u.send(buildQuery(20, 'web'), port);
        t.sock.write(frame(buildQuery(21, 'web')));
        await eventually(() => u.got.has(20) && t.got.has(21) && t.got.has(7), 'answers after junk');
        assert.equal(parseHeader(t.got.get(7)!).rcode, RCODE_FORMERR);
        assert.deepEqual(parseResponse(u.got.get(20)!).addrs, ['10.43.0.2']);
      } finally {
        u.close();
        t.sock.destroy();
      }
    });
  });
});

describe('DNS per-source limits', () => {
  let up: Awaited<ReturnType<typeof fakeUpstream>>;
  let srv: DnsServer | undefined;
  beforeEach(async () => {
    up = await fakeUpstream();
  });
  afterEach(async () => {
    await srv?.close();
    srv = undefined;
    await up.close();
  });
  const server = async (limits: Partial<DnsLimits>) => {
    srv = new DnsServer({ upstreams: ['127.0.0.1'], upstreamPort: up.port, limits });
    srv.setTable(bigTable);
    await srv.listen('127.0.0.1', 0);
    return srv;
  };
  const rcode = (b: Buffer | undefined) => parseHeader(b!).rcode;

  it('REFUSES relayed queries over maxForwardsPerSource while other sources and local names go on', async () => {
    const s = await server({ maxForwardsPerSource: 2 });
    const a1 = s.answer(buildQuery(1, 'example.org'), '10.42.9.1');
    const a2 = s.answer(buildQuery(2, 'example.org'), '10.42.9.1');
    await eventually(() => up.held() === 2, 'two queries at the upstream');
    assert.equal(rcode(await s.answer(buildQuery(3, 'example.org'), '10.42.9.1')), RCODE_REFUSED);
    assert.equal(parseResponse((await s.answer(buildQuery(4, 'web'), '10.42.9.1'))!).addrs[0], '10.43.0.2');
    const b1 = s.answer(buildQuery(5, 'example.org'), '10.42.9.2');
    await eventually(() => up.held() === 3, 'the other source relayed');
    assert.equal(s.stats.refused, 1);
    up.release();
    assert.deepEqual(await Promise.all([a1, a2, b1].map(async (p) => rcode(await p))), [RCODE_NOERROR, RCODE_NOERROR, RCODE_NOERROR]);
    assert.deepEqual(s.load(), { inflight: 0, forwards: 0, tcpConns: 0, sources: 0 });
    assert.equal(rcode(await Promise.all([s.answer(buildQuery(6, 'example.org'), '10.42.9.1'), eventually(() => up.held() === 1, 'relayed again').then(() => up.release())]).then(([r]) => r)), RCODE_NOERROR);
  });

  it('REFUSES relayed queries over maxForwardsTotal, whichever source asks', async () => {
    const s = await server({ maxForwardsTotal: 2 });
    const held = [s.answer(buildQuery(1, 'example.org'), '10.42.9.1'), s.answer(buildQuery(2, 'example.org'), '10.42.9.2')];
    await eventually(() => up.held() === 2, 'two queries at the upstream');
    assert.equal(rcode(await s.answer(buildQuery(3, 'example.org'), '10.42.9.3')), RCODE_REFUSED);
    up.release();
    await Promise.all(held);
    assert.equal(s.load().forwards, 0);
  });

  it('drops UDP queries of a source over maxInflightPerSource and answers the held one after', async () => {
    const s = await server({ maxInflightPerSource: 1 });
    const u = await udpClient();
    try {
      u.send(buildQuery(1, 'example.org'), s.port!);
      await eventually(() => up.held() === 1, 'the first relayed');
      u.send(buildQuery(2, 'web'), s.port!);
      await eventually(() => s.stats.dropped === 1, 'the second dropped');
      up.release();
      await eventually(() => u.got.has(1), 'the first answered');
      u.send(buildQuery(3, 'web'), s.port!);
      await eventually(() => u.got.has(3), 'a new query answered');
      assert.equal(u.got.has(2), false);
    } finally {
      u.close();
    }
  });

  it('stops reading a TCP connection whose source has maxInflightPerSource queries in flight, and reads on as they finish', async () => {
    const s = await server({ maxInflightPerSource: 1 });
    const t = await tcpClient(s.port!);
    try {
      t.sock.write(Buffer.concat([1, 2, 3].map((id) => frame(buildQuery(id, 'example.org')))));
      for (let n = 1; n <= 3; n++) {
        await eventually(() => up.held() === 1, `query ${n} at the upstream`);
        assert.equal(s.load().forwards, 1, 'one relayed at a time');
        up.release();
        await eventually(() => t.got.has(n), `answer ${n}`);
      }
      assert.ok(s.stats.tcpPaused >= 2);
      assert.equal(s.stats.refused, 0, 'pipelined queries wait, they are not refused');
    } finally {
      t.sock.destroy();
    }
    await eventually(() => s.load().sources === 0, 'nothing held');
  });

  it('stops reading a TCP client that pipelines and never reads its answers, holding at most maxInflightPerSource of them', async function () {
    this.timeout(30_000); // 10,000 answers on a shared machine
    const s = await server({});
    const t = await tcpClient(s.port!);
    const n = 10_000; // ~16 MB of answers: more than the kernel's socket buffers take
    try {
      t.sock.pause();
      t.sock.write(Buffer.concat(Array.from({ length: n }, (_, id) => frame(buildQuery(id, 'tasks.web')))));
      await eventually(() => s.stats.tcpPaused >= 1, 'the server stops reading', 20_000);
      assert.ok(s.load().inflight <= DEFAULT_DNS_LIMITS.maxInflightPerSource);
      t.sock.resume();
      await eventually(() => t.got.size === n, 'every answer once the client reads', 20_000);
    } finally {
      t.sock.destroy();
    }
    await eventually(() => s.load().sources === 0, 'nothing held');
  });

  it('closes TCP connections over maxTcpConnsPerSource; the others still answer', async () => {
    const s = await server({ maxTcpConnsPerSource: 2 });
    const conns = [await tcpClient(s.port!), await tcpClient(s.port!), await tcpClient(s.port!)];
    try {
      await eventually(() => conns[2].closed(), 'the third closed by the server');
      assert.equal(s.stats.tcpRejected, 1);
      for (const [i, c] of conns.slice(0, 2).entries()) c.sock.write(frame(buildQuery(i + 1, 'web')));
      await eventually(() => conns[0].got.has(1) && conns[1].got.has(2), 'the first two answer');
    } finally {
      for (const c of conns) c.sock.destroy();
    }
    await eventually(() => s.load().tcpConns === 0 && s.load().sources === 0, 'nothing held');
  });

  it('closes idle TCP connections after tcpIdleTimeoutMs, also one trickling an incomplete query, not one waiting for an answer', async () => {
    const s = await server({ tcpIdleTimeoutMs: 150 });
    const idle = await tcpClient(s.port!);
    const trickle = await tcpClient(s.port!);
    const waiting = await tcpClient(s.port!);
    try {
      const q = frame(buildQuery(1, 'web'));
      waiting.sock.write(frame(buildQuery(2, 'example.org')));
      await eventually(() => up.held() === 1, 'the relayed query at the upstream');
      let i = 0;
      const drip = setInterval(() => i < q.length - 1 && trickle.sock.write(q.subarray(i, ++i)), 50);
      try {
        await eventually(() => idle.closed() && trickle.closed(), 'idle and trickling connections closed');
      } finally {
        clearInterval(drip);
      }
      assert.equal(waiting.closed(), false, 'a connection with a query in flight stays');
      up.release();
      await eventually(() => waiting.got.has(2), 'the relayed answer');
      await eventually(() => waiting.closed(), 'then it goes idle and is closed');
      assert.equal(s.stats.tcpIdleClosed, 3);
    } finally {
      for (const c of [idle, trickle, waiting]) c.sock.destroy();
    }
  });

  it('refuses queries over maxQueryBytes: FORMERR over UDP, the connection closed over TCP', async () => {
    const s = await server({ maxQueryBytes: 512 });
    const big = Buffer.concat([buildQuery(9, 'web'), Buffer.alloc(600)]);
    assert.equal(rcode(await s.answer(big, '10.42.9.1')), RCODE_FORMERR);
    const t = await tcpClient(s.port!);
    try {
      t.sock.write(frame(big).subarray(0, 100)); // the length alone says it is too big
      await eventually(() => t.closed(), 'connection closed');
      assert.equal(t.got.size, 0);
    } finally {
      t.sock.destroy();
    }
  });

  it('relays an upstream answer too big for the client over UDP as TC, and ignores answers with another id', async () => {
    const s = await server({ forwardTimeoutMs: 300 });
    const p = s.answer(buildQuery(1, 'example.org'), '10.42.9.1');
    await eventually(() => up.held() === 1, 'relayed');
    up.release({ size: 900 });
    const res = (await p)!;
    assert.ok(res.length <= 512);
    assert.equal(parseHeader(res).tc, true);
    // Over TCP the whole answer.
    const p2 = s.answer(buildQuery(2, 'example.org'), '10.42.9.1', true);
    await eventually(() => up.held() === 1, 'relayed over TCP');
    up.release({ size: 900 });
    assert.equal((await p2)!.length, 900);
    // A forged answer (wrong id) on the relaying socket is not taken.
    const p3 = s.answer(buildQuery(3, 'example.org'), '10.42.9.1');
    await eventually(() => up.held() === 1, 'relayed');
    up.release({ id: 4 });
    assert.equal(rcode(await p3), RCODE_SERVFAIL);
  });
});

// ---- hostile packets ---------------------------------------------------------

/** A header: id 0x4242, flags, section counts. */
function hdr(flags: number, qd: number, an = 0, ns = 0, ar = 0): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x4242, 0);
  h.writeUInt16BE(flags, 2);
  [qd, an, ns, ar].forEach((c, i) => h.writeUInt16BE(c, 4 + 2 * i));
  return h;
}
const bytes = (...parts: (Buffer | number[] | string)[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'hex') : Buffer.isBuffer(p) ? p : Buffer.from(p))));
const label = (n: number, c = 'a') => [n, ...Buffer.from(c.repeat(n))];
const QTAIL = '00010001'; // type A, class IN
const WEB = [3, ...Buffer.from('web'), 0];
/** An OPT record: root name, type 41, size 1232, rdata. */
const opt = (rdata: number[] = []) => bytes([0], '0029', '04d0', '00000000', [rdata.length >> 8, rdata.length & 0xff], rdata);

describe('DNS hostile packets', () => {
  const srv = new DnsServer({ upstreams: [] });
  srv.setTable(bigTable);
  const cases: [string, Buffer, 'drop' | number][] = [
    ['empty', Buffer.alloc(0), 'drop'],
    ['shorter than a header', Buffer.from([0x42, 0x42, 1, 0, 0, 1, 0, 0, 0, 0, 0]), 'drop'],
    ['a response (QR set): answering it could loop between two servers', bytes(hdr(0x8100, 1), WEB, QTAIL), 'drop'],
    ['no question', bytes(hdr(0x0100, 0)), RCODE_FORMERR],
    ['two questions counted, one sent', bytes(hdr(0x0100, 2), WEB, QTAIL), RCODE_FORMERR],
    ['two questions', bytes(hdr(0x0100, 2), WEB, QTAIL, WEB, QTAIL), RCODE_FORMERR],
    ['question counted, none sent', bytes(hdr(0x0100, 1)), RCODE_FORMERR],
    ['question name a pointer to itself', bytes(hdr(0x0100, 1), 'c00c', QTAIL), RCODE_FORMERR],
    ['question name a pointer forward', bytes(hdr(0x0100, 1), 'c011', QTAIL, WEB), RCODE_FORMERR],
    ['question name a pointer out of the message', bytes(hdr(0x0100, 1), 'ffff', QTAIL), RCODE_FORMERR],
    ['question name a pointer into the header', bytes(hdr(0x0100, 1), 'c002', QTAIL), RCODE_FORMERR],
    ['pointer cut short', bytes(hdr(0x0100, 1), 'c0'), RCODE_FORMERR],
    ['label of 64 (type 0x40)', bytes(hdr(0x0100, 1), label(64), [0], QTAIL), RCODE_FORMERR],
    ['label type 0x80', bytes(hdr(0x0100, 1), [0x81, 0x61, 0], QTAIL), RCODE_FORMERR],
    ['name of 257 bytes', bytes(hdr(0x0100, 1), label(63), label(63), label(63), label(63), [0], QTAIL), RCODE_FORMERR],
    ['label running past the end', bytes(hdr(0x0100, 1), [20, 0x61, 0x62]), RCODE_FORMERR],
    ['name without its end', bytes(hdr(0x0100, 1), [3, 0x61, 0x62, 0x63]), RCODE_FORMERR],
    ['question without type and class', bytes(hdr(0x0100, 1), WEB, '0001'), RCODE_FORMERR],
    ['an answer counted, none sent', bytes(hdr(0x0100, 1, 1), WEB, QTAIL), RCODE_FORMERR],
    ['65,535 additional records counted, one sent', bytes(hdr(0x0100, 1, 0, 0, 0xffff), WEB, QTAIL, opt()), RCODE_FORMERR],
    ['record data running past the end', bytes(hdr(0x0100, 1, 0, 0, 1), WEB, QTAIL, 'c00c', '0001000100000000', '00ff', '0102'), RCODE_FORMERR],
    ['record name a pointer to itself', bytes(hdr(0x0100, 1, 0, 0, 1), WEB, QTAIL, 'c015', '00010001000000000000'), RCODE_FORMERR],
    ['record name a loop through a label', bytes(hdr(0x0100, 1, 0, 0, 1), WEB, QTAIL, [1, 0x61], 'c015', '00010001000000000000'), RCODE_FORMERR],
    ['two OPT records', bytes(hdr(0x0100, 1, 0, 0, 2), WEB, QTAIL, opt(), opt()), RCODE_FORMERR],
    ['OPT record with a name', bytes(hdr(0x0100, 1, 0, 0, 1), WEB, QTAIL, 'c00c', '0029', '04d0', '00000000', '0000'), RCODE_FORMERR],
    ['OPT record in the answer section', bytes(hdr(0x0100, 1, 1), WEB, QTAIL, opt()), RCODE_FORMERR],
    ['EDNS option longer than its record', bytes(hdr(0x0100, 1, 0, 0, 1), WEB, QTAIL, opt([0, 10, 0, 8, 1, 2])), RCODE_FORMERR],
    ['bytes after the last record', bytes(hdr(0x0100, 1), WEB, QTAIL, '00'), RCODE_FORMERR],
    ['opcode STATUS', bytes(hdr(0x1100, 1), WEB, QTAIL), RCODE_NOTIMP],
    ['too long', bytes(hdr(0x0100, 1), WEB, QTAIL, Buffer.alloc(5000)), RCODE_FORMERR],
  ];
  for (const [what, pkt, expect] of cases) {
    it(`${what}: ${expect === 'drop' ? 'dropped' : `rcode ${expect}`}, nothing bigger than the packet sent back`, async () => {
      const res = await srv.answer(pkt, '10.42.9.1');
      if (expect === 'drop') return assert.equal(res, undefined);
      assert.ok(res);
      const h = parseHeader(res);
      assert.deepEqual([h.id, h.qr, h.rcode], [0x4242, true, expect]);
      assert.ok(res.length <= Math.max(12, pkt.length));
    });
  }

  it('accepts what is well formed at the edges: a 63-byte label, a 255-byte name, a backward pointer in a record, EDNS options', async () => {
    const ok = [
      bytes(hdr(0x0100, 1), label(63), [0], QTAIL),
      bytes(hdr(0x0100, 1), label(63), label(63), label(63), label(61), [0], QTAIL),
      bytes(hdr(0x0100, 1, 0, 0, 1), [5, ...Buffer.from('tasks'), 3, ...Buffer.from('web'), 0], QTAIL, 'c00c', '00010001000000000004', '0a000001'),
      bytes(hdr(0x0100, 1, 0, 0, 1), WEB, QTAIL, opt([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])),
    ];
    const rcodes = await Promise.all(ok.map(async (p) => parseHeader((await srv.answer(p, '10.42.9.1'))!).rcode));
    assert.deepEqual(rcodes, [RCODE_NXDOMAIN, 2, RCODE_NOERROR, RCODE_NOERROR]); // 255 bytes: dotted, relayed, no upstream
  });

  it('reads a label holding a dot as one label, not as tasks.web', async () => {
    const res = (await srv.answer(bytes(hdr(0x0100, 1), label(9), [0], QTAIL).fill('tasks.web', 13, 22), '10.42.9.1'))!;
    assert.deepEqual(parseResponse(res).addrs, []);
  });

  it('throws only DnsFormatError on names with loops, whatever the client reading a response', () => {
    const loop = bytes(hdr(0x8180, 1, 1), WEB, QTAIL, [1, 0x61], 'c015', '00010001000000000004', '0a000001');
    assert.throws(() => parseResponse(loop), DnsFormatError);
    assert.equal(readName(bytes(hdr(0, 1), WEB, [1, 0x61], 'c00c'), 17).name, 'a.web');
  });

  it('survives 3,000 mutated queries: each answered or dropped, none thrown, none over 1232 bytes', async () => {
    let seed = 0x2545f491;
    const rnd = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const seeds = [buildQuery(1, 'tasks.web'), buildQuery(2, 'tasks.web', QTYPE_A, { ednsUdpPayload: 4096 }), ...[2, 3].map((i) => cases[cases.length - i][1])];
    seeds.push(bytes(hdr(0x0100, 1, 0, 0, 1), WEB, QTAIL, 'c00c', '00010001000000000004', '0a000001'));
    for (let i = 0; i < 3000; i++) {
      const m = Buffer.from(seeds[rnd(seeds.length)]);
      for (let k = 1 + rnd(4); k > 0; k--) {
        const op = rnd(4);
        if (op === 0) m[rnd(m.length)] = rnd(256);
        else if (op === 1) m[rnd(m.length)] = [0, 0xc0, 0x3f, 0x40, 0xff][rnd(5)];
        else if (op === 2) m.writeUInt16BE(rnd(4), 4 + 2 * rnd(4));
        else m[2 + rnd(2)] &= 0x7f; // keep QR clear more often
      }
      const cut = rnd(3) === 0 ? m.subarray(0, rnd(m.length + 1)) : m;
      const res = await srv.answer(cut, '10.42.9.1');
      if (res) {
        assert.ok(res.length <= 1232, `${res.length} bytes for ${cut.toString('hex')}`);
        assert.equal(parseHeader(res).qr, true);
      }
    }
  });
});

describe('DNS relay to a task\'s --dns servers (docs/container-options.md)', () => {
  it("relays a task's other names to its own servers; other sources still use the host's", async () => {
    const up = await fakeUpstream();
    // The host's resolver: an address nothing answers on (each query there waits out forwardTimeoutMs, then SERVFAIL).
    const srv = new DnsServer({ upstreams: ['127.0.0.2'], upstreamPort: up.port, limits: { forwardTimeoutMs: 200 } });
    try {
      srv.setTable(new DnsTable([], new Map(), new Map([['10.42.9.7', ['127.0.0.1']]])));
      const own = srv.answer(buildQuery(1, 'example.org'), '10.42.9.7');
      await eventually(() => up.held() === 1, "the task's query at its --dns server");
      up.release();
      assert.equal(parseHeader((await own)!).rcode, RCODE_NOERROR);
      const other = await srv.answer(buildQuery(2, 'example.org'), '10.42.9.8');
      assert.equal(up.held(), 0, "another task's query did not go to that server");
      assert.notEqual(parseHeader(other!).rcode, RCODE_NOERROR);
    } finally {
      await srv.close();
      await up.close();
    }
  });
});
