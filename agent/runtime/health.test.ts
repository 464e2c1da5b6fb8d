import * as assert from 'node:assert/strict';
import type { HealthState } from '../executor';
import { HealthChecker, healthCommand, healthSpec, type HealthSpec } from './health';

describe('health checks', () => {
  it('turns a test into a command', () => {
    assert.deepEqual(healthCommand(['CMD', 'wget', '-O-', 'http://localhost/']), ['wget', '-O-', 'http://localhost/']);
    assert.deepEqual(healthCommand(['CMD-SHELL', 'test -e /ok']), ['/bin/sh', '-c', 'test -e /ok']);
    assert.equal(healthCommand(['NONE']), undefined);
    assert.equal(healthCommand([]), undefined);
  });

  it("prefers the spec's check, falls back to the image's (nanoseconds) and fills Docker's defaults", () => {
    assert.deepEqual(healthSpec({ test: ['CMD', 'true'], intervalMs: 1000, timeoutMs: 0, retries: 0, startPeriodMs: 0 }, { Test: ['CMD', 'false'] }), {
      test: ['CMD', 'true'],
      intervalMs: 1000,
      timeoutMs: 30_000,
      retries: 3,
      startPeriodMs: 0,
    });
    assert.deepEqual(healthSpec(undefined, { Test: ['CMD-SHELL', 'x'], Interval: 5e9, Retries: 2 }), {
      test: ['CMD-SHELL', 'x'],
      intervalMs: 5000,
      timeoutMs: 30_000,
      retries: 2,
      startPeriodMs: 0,
    });
    assert.equal(healthSpec({ test: ['NONE'] }, { Test: ['CMD', 'true'] }), undefined);
  });

  const spec: HealthSpec = { test: ['CMD', 'x'], intervalMs: 1000, timeoutMs: 1000, retries: 2, startPeriodMs: 5000 };

  it('goes healthy on the first success and unhealthy after `retries` failures in a row', async () => {
    const results = [true, false, true, false, false];
    const seen: HealthState[] = [];
    let now = 10_000;
    const hc = new HealthChecker(spec, async () => results.shift() ?? false, (s) => seen.push(s), () => now);
    now += 6000;
    for (let i = 0; i < 5; i++) await hc.tick();
    assert.deepEqual(seen, ['healthy', 'unhealthy']);
    assert.equal(hc.state, 'unhealthy');
  });

  it('does not count failures during the start period', async () => {
    let now = 0;
    const seen: HealthState[] = [];
    const hc = new HealthChecker(spec, async () => false, (s) => seen.push(s), () => now);
    for (let i = 0; i < 4; i++) await hc.tick();
    assert.equal(hc.state, 'starting');
    now = 6000;
    await hc.tick();
    await hc.tick();
    assert.equal(hc.state, 'unhealthy');
  });
});
