// The real cluster CA of a test manager, loaded as a second manager would
// (the store and the KEK file), to issue certificates tests need that no
// join hands out: an expired one, say.
import { createKeyAndCsr } from '../../common/csr';
import type { Role, TlsBundle } from '../../common/identity';
import { ClusterCa } from '../../manager/ca/ca';
import { loadKek } from '../../manager/crypto/kek';
import { EtcdStore } from '../../manager/store/etcd-store';
import type { Cluster } from '../../proto/mod';

export async function issueFromClusterCa(o: { etcd: string[]; etcdTls: TlsBundle; kekFile: string; who: { id: string; role: Role }; ttlMs: number }): Promise<TlsBundle> {
  const store = EtcdStore.connect(o.etcd, undefined, undefined, { tls: o.etcdTls });
  try {
    const cluster = await store.get<Cluster>('cluster', 'default');
    const ca = await ClusterCa.loadOrCreate({ store, kek: loadKek(o.kekFile), cluster: cluster?.clusterId || 'default', revoked: new Set(), defaultTtl: () => o.ttlMs });
    const { keyPem, csrPem } = await createKeyAndCsr();
    const issued = await ca.issue(csrPem, o.who, o.ttlMs);
    return { ca: issued.ca, cert: issued.cert, key: keyPem };
  } finally {
    await store.close();
  }
}
