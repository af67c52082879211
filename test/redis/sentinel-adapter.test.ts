/**
 * The Sentinel adapter: node-redis' Sentinel client throws a TypeError of its own while it moves to a
 * new master. Those reach publishers as 503 (retry), like every other failover error, not as 500.
 * A fake client stands for node-redis here: the real switch is timing-dependent (test/redis/sentinel.test.ts).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { it } from 'node:test';
import { toStoreError } from '../../src/store/redis/errors.js';
import { SentinelAdapter, type RedisSentinelClient } from '../../src/store/redis/sentinel-adapter.js';

class SwitchingSentinel extends EventEmitter implements RedisSentinelClient {
  isOpen = true;
  isReady = true;
  reply: () => Promise<unknown> = () => Promise.reject(new TypeError("Cannot read properties of undefined (reading 'isReady')"));
  async connect() {}
  async destroy() {}
  sendCommand() {
    return this.reply();
  }
  async subscribe() {}
  async unsubscribe() {}
}

it("a TypeError thrown by node-redis' Sentinel client mid-switch is a 503; a Redis error reply is not turned into one", async () => {
  const fake = new SwitchingSentinel();
  const adapter = new SentinelAdapter({ name: 'mymaster', sentinelRootNodes: [{ host: '127.0.0.1', port: 1 }] }, () => fake);
  for (const call of [() => adapter.sendCommand(['GET', 'k']), () => adapter.publish('c', 'm')]) {
    const err = await call().then(
      () => assert.fail('resolved'),
      (e: unknown) => e,
    );
    assert.equal((toStoreError(err) as { status?: number }).status, 503, String(err));
    assert.match(String((toStoreError(err) as Error).message), /moving to a new master/);
  }
  // A script bug (an error reply) still reaches the app as it is.
  fake.reply = () => Promise.reject(new Error('ERR Error running script'));
  const reply = await adapter.sendCommand(['EVAL', 'x', '0']).catch((e: unknown) => e);
  assert.equal((toStoreError(reply) as { status?: number }).status, undefined);
});
