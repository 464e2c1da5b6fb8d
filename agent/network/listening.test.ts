// The listening ports an agent reports: TCP in LISTEN, UDP unconnected, below the ephemeral range.
import { strict as assert } from 'node:assert';
import { listeningPorts, parseProcNet } from './listening';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1CFC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0A000001:0016 0A000002:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
   3: 00000000:9C40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
`;

describe('listening ports', () => {
  it('takes TCP sockets in LISTEN below the ephemeral range, each port once', () => {
    assert.deepEqual(parseProcNet(TCP, '0A', 32768).sort(), [22, 7420]);
    assert.deepEqual(parseProcNet(TCP + TCP, '0A', 32768).length, 2);
  });
  it('reads this host', () => {
    const p = listeningPorts();
    assert.ok(Array.isArray(p.listeningTcp) && Array.isArray(p.listeningUdp));
    assert.ok(p.listeningTcp.every((x) => x > 0 && x < 65536));
  });
});
