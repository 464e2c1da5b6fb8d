// A watch of one kind of object on a running cluster's store, for tools
// outside the manager (benchmarks) that count commits as they land, without
// importing etcd3 themselves.
import type { TlsBundle } from '../../common/identity';
import { EtcdStore } from './etcd-store';
import { PREFIX, type Kind } from './store';

/** Calls onPut(id, JSON value) for every write of a `kind` object from now on. */
export async function watchKind(endpoints: string[], kind: Kind, onPut: (id: string, value: string) => void, tls?: TlsBundle): Promise<{ close(): Promise<void> }> {
  const store = EtcdStore.connect(endpoints, undefined, undefined, { tls });
  const prefix = `${PREFIX}${kind}/`;
  try {
    const from = await store.syncRevision(`watch-${process.pid}`);
    const w = await store.watch(
      from,
      (b) => {
        for (const e of b.events) if (e.type === 'put' && e.kv.key.startsWith(prefix)) onPut(e.kv.key.slice(prefix.length), e.kv.value);
      },
      () => undefined,
    );
    let closed: Promise<void> | undefined;
    return {
      close: () =>
        (closed ??= (async () => {
          await w.cancel().catch(() => undefined);
          await store.close();
        })()),
    };
  } catch (e) {
    await store.close();
    throw e;
  }
}
