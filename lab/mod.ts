// The multi-host lab on one machine, the public surface of lab/: what
// `convoy lab up|down` (cli/lab), the e2e tests (e2e/support/lab.ts) and the
// benchmarks use. Hosts are network namespaces (`convoy-lab-h<i>`,
// 10.41.0.(10+i)) joined by the bridge `convoy-lab0` (10.41.0.1/24, the
// machine's side). The registry runs on the machine side, the manager (with
// its embedded etcd and the lab's NATS, tls://10.41.0.11:4222) in host 1 —
// or, with `--managers M`, an etcd on the machine side and managers in hosts
// 1..M sharing it — and one agent per host running real containers; each
// agent programs its own host's networking (bridge convoy0, VXLAN, nftables,
// DNS) inside its host namespace. See docs/lab.md.
//
//   topology.ts  hosts, addresses, process names
//   state.ts     lab.json and the lab's tmpfs
//   procs.ts     processes: started detached, stopped by pid, orphans
//   services.ts  the lab's registry and shared etcd; NATS outages on purpose
//   cluster.ts   labUp / labDown: managers and agents in the hosts
//   hosts.ts     killing a host, removing containers and namespaces
//   underlay.ts  the namespaces-and-bridge "hosts" themselves
//   images.ts    the busybox image (the lab's, and the tests')
//   demo.ts      `lab up --demo`
//   etcd.ts, registry.ts  throwaway etcd and registry for tests
export { labUp, labDown, labSecurity, type LabOptions } from './cluster';
export { killLabHost, removeLabNetwork } from './hosts';
export { pushLabImage, LAB_IMAGE_REPO } from './images';
export { DEMO_HTTPD } from './demo';
export { LAB_NATS_URL, labNatsPids, startLabNats, stopLabNats, labWait } from './services';
export { LAB_DIR, LAB_TMPFS, readLab, type LabState } from './state';
export {
  AGENT_METRICS_PORT,
  LAB_BRIDGE,
  LAB_CIDR,
  LAB_ETCD_PORT,
  LAB_GATEWAY,
  LAB_NATS_PORT,
  LAB_NETNS_PREFIX,
  LAB_REGISTRY_PORT,
  MANAGER_METRICS_PORT,
  MANAGER_PORT,
  labHostAddr,
  type LabHost,
} from './topology';
