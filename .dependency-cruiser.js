// The layering of docs/architecture.md, checked by `npm run lint`
// (dependency-cruiser). From the bottom up:
//
//   common   plumbing: imports nothing of ours
//   proto    contracts and defaults: imports common only
//   manager, agent   the programs: common and proto, never each other
//   lab      the multi-host lab: may use the programs' parts
//   cli      the convoy binary: everything above it, lab included
//   e2e, bench   on top; test code
//
// A test (*.test.ts, *.int.test.ts, *.e2e.ts) is a leaf that nothing imports,
// so it cannot make production code depend on anything: tests may set up
// with any layer, except that manager and agent never import each other,
// tests included (an agent test that needs a real manager gets it from
// e2e/support, a manager test its agents the same way). Test code (e2e/ and
// every testing/ folder) is imported only by tests, bench/ and other test
// code. The rule test is .ci/layering.test.js.
/** Tests: nothing imports them; they may import test code. */
const TEST_FILE = '\\.(test|int\\.test|e2e)\\.ts$';
/** Test code: the e2e harness and the doubles in testing/ folders. */
const TEST_CODE = '(^e2e/|(^|/)testing/)';
/** May import test code: tests, benchmarks and test code itself. */
const MAY_USE_TEST_CODE = `(${TEST_FILE}|^bench/|${TEST_CODE})`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: two modules that cannot be understood (or loaded) one without the other.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'common-is-the-bottom',
      severity: 'error',
      comment: 'common/ is the plumbing every program shares: it imports nothing of ours (proto/ may import it, so never the other way).',
      from: { path: '^common/', pathNot: TEST_FILE },
      to: { path: '^(proto|manager|agent|lab|cli|e2e|bench)/' },
    },
    {
      name: 'proto-imports-only-common',
      severity: 'error',
      comment: 'proto/ holds the contracts: it imports nothing of ours but common/.',
      from: { path: '^proto/', pathNot: TEST_FILE },
      to: { path: '^(manager|agent|lab|cli|e2e|bench)/' },
    },
    {
      name: 'manager-not-agent',
      severity: 'error',
      comment: 'The manager and the agent never import each other (tests included): what they share is in proto/ or common/.',
      from: { path: '^manager/' },
      to: { path: '^agent/' },
    },
    {
      name: 'agent-not-manager',
      severity: 'error',
      comment: 'The manager and the agent never import each other (tests included): what they share is in proto/ or common/.',
      from: { path: '^agent/' },
      to: { path: '^manager/' },
    },
    {
      name: 'programs-not-tools',
      severity: 'error',
      comment: 'The manager and the agent do not import the tools built on them (lab/, cli/, bench/).',
      from: { path: '^(manager|agent)/', pathNot: TEST_FILE },
      to: { path: '^(lab|cli|bench)/' },
    },
    {
      name: 'lab-not-cli',
      severity: 'error',
      comment: 'cli/ sits above lab/ (`convoy lab` is a thin verb over lab/mod.ts), never the other way.',
      from: { path: '^lab/' },
      to: { path: '^cli/' },
    },
    {
      name: 'only-tests-import-test-code',
      severity: 'error',
      comment: 'e2e/ and testing/ folders are test code: only tests, bench/ and other test code import them.',
      from: { pathNot: MAY_USE_TEST_CODE },
      to: { path: TEST_CODE },
    },
    {
      name: 'no-importing-tests',
      severity: 'error',
      comment: 'A test file is a leaf: nothing imports it (shared set-up goes into a testing/ folder or e2e/support).',
      from: {},
      to: { path: TEST_FILE },
    },
    {
      name: 'no-bench-outside-bench',
      severity: 'error',
      comment: 'bench/ is on top: nothing else imports it.',
      from: { pathNot: '^bench/' },
      to: { path: '^bench/' },
    },
    {
      name: 'only-the-store-sees-etcd',
      severity: 'error',
      comment: 'Only manager/store/ talks to etcd (the embedded launcher only spawns it): everything else goes through the Store interface.',
      from: { pathNot: ['^manager/store/'] },
      to: { path: '(^|/)node_modules/etcd3/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    moduleSystems: ['cjs', 'es6'],
  },
};
