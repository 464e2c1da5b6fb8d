import { strict as assert } from 'node:assert';
import { ago, formatBytes, formatCpus, formatDuration, formatPort, humanDuration, parseFormat, table, titleCase } from './format';

describe('cli format', () => {
  it('aligns table columns three spaces apart and leaves the last one unpadded', () => {
    assert.equal(table(['ID', 'NAME', 'X'], [['a', 'longer-name', ''], ['bbbb', 'n', 'z']]), 'ID     NAME          X\na      longer-name\nbbbb   n             z\n');
    assert.equal(table(['ID', 'NAME'], []), 'ID   NAME\n');
  });

  it('says how long ago as Docker does', () => {
    assert.equal(humanDuration(500), 'Less than a second');
    assert.equal(humanDuration(1000), '1 second');
    assert.equal(humanDuration(5000), '5 seconds');
    assert.equal(humanDuration(65_000), 'About a minute');
    assert.equal(humanDuration(5 * 60_000), '5 minutes');
    assert.equal(humanDuration(3_600_000), 'About an hour');
    assert.equal(humanDuration(5 * 3_600_000), '5 hours');
    assert.equal(humanDuration(3 * 86_400_000), '3 days');
    assert.equal(humanDuration(21 * 86_400_000), '3 weeks');
    assert.equal(ago(1000, 6000), '5 seconds ago');
    assert.equal(ago(0, 6000), '-');
  });

  it('renders sizes, CPUs, durations and ports', () => {
    assert.equal(formatBytes(64 * 1024 ** 2), '64MiB');
    assert.equal(formatBytes(1.5 * 1024 ** 3), '1.5GiB');
    assert.equal(formatBytes(512), '512B');
    assert.equal(formatCpus(500_000_000), '0.5');
    assert.equal(formatDuration(90_000), '1m30s');
    assert.equal(formatDuration(500), '500ms');
    assert.equal(formatDuration(3_600_000), '1h0m');
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatPort({ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'INGRESS' }), '*:8080->80/tcp');
    assert.equal(formatPort({ name: '', protocol: 'udp', targetPort: 53, publishedPort: 0, publishMode: 'HOST' }), '*:->53/udp (host)');
    assert.equal(titleCase('RESTART_ON_FAILURE'), 'Restart-on-failure');
  });

  it('accepts table and json formats only', () => {
    assert.equal(parseFormat(undefined), 'table');
    assert.equal(parseFormat('json'), 'json');
    assert.throws(() => parseFormat('{{.ID}}'), /--format: "\{\{.ID\}\}" is not supported \(use table or json\)/);
  });
});
