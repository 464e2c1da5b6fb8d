// A real manager in the test's own process, for tests outside manager/ that
// need one: an agent test may not import manager/ (agent and manager never
// import each other, tests included: .dependency-cruiser.js), so it stands on
// this harness, as it stands on lab/ for etcd and the registry.
export { startManager, type ManagerHandle, type ManagerOptions } from '../../manager/mod';
export { freePort } from '../../common/net';
export { adminSecurity } from './security';
export { issueFromClusterCa } from './cluster-ca';
