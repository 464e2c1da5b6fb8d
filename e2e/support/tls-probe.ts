// A client tests run inside a task's network namespace (Lab.nodeInNetnsOf):
// it calls the Control API or connects to NATS as a workload that reached the
// port would, with no client certificate (only the CA, to trust the server)
// or, as the control, with a bundle. Prints one JSON line, {"ok":true} or
// {"ok":false,"code":…,"err":"…"}, and exits 0 either way.
//
//   node tls-probe.js grpc|nats ADDR CA_FILE [BUNDLE_DIR]
import * as fs from 'node:fs';
import { connect } from 'nats';
import { readBundle } from '../../common/identity';
import { natsTlsOptions } from '../../common/nats-tls';
import { connectControl, mtls } from '../../proto/client';

const PROBE_MS = 8_000;

function within<T>(p: Promise<T>, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${PROBE_MS} ms`)), PROBE_MS).unref())]);
}

async function probe(kind: string, addr: string, caFile: string, bundleDir?: string): Promise<void> {
  const ca = fs.readFileSync(caFile, 'utf8');
  const bundle = bundleDir ? readBundle(bundleDir) : undefined;
  if (kind === 'grpc') {
    const c = connectControl(addr, { security: bundle ? mtls(bundle) : { mode: 'join', ca } });
    try {
      await within(c.getClusterInfo({}), 'GetClusterInfo');
    } finally {
      c.close();
    }
  } else if (kind === 'nats') {
    const url = `tls://${addr}`;
    // No bundle: the CA and the server-name check only, no client certificate.
    const { cert: _c, key: _k, ...trustOnly } = natsTlsOptions(url, { ca, cert: '', key: '' }) as Record<string, unknown>;
    const tlsOpts = bundle ? natsTlsOptions(url, bundle) : trustOnly;
    const nc = await within(connect({ servers: url, tls: tlsOpts, reconnect: false, timeout: PROBE_MS }), 'NATS connect');
    await nc.flush();
    await nc.close();
  } else throw new Error(`kind: "${kind}" is not grpc or nats`);
}

const [kind, addr, caFile, bundleDir] = process.argv.slice(2);
probe(kind, addr, caFile, bundleDir).then(
  () => {
    process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
    process.exit(0);
  },
  (e: unknown) => {
    const err = e as { code?: unknown; message?: string };
    process.stdout.write(`${JSON.stringify({ ok: false, code: err.code ?? null, err: err.message ?? String(e) })}\n`);
    process.exit(0);
  },
);
