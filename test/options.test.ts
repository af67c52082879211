import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { createPushRelay, MemoryStore } from '../src/index.js';
import { resolvePublisher, resolveSubscriber } from '../src/options.js';
import { parseDuration, parseSize } from '../src/protocol/units.js';

/** Asserts that `fn` throws a TypeError whose message matches every pattern. */
function throwsTypeError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof TypeError, `expected a TypeError, got ${String(err)}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

describe('option validation', () => {
  it('names the option and the bad value', () => {
    throwsTypeError(() => createPushRelay({ maxMessageBufferLength: -1 }), /"maxMessageBufferLength"/, /-1/);
    throwsTypeError(() => createPushRelay({ concurrency: 'all' as never }), /"concurrency"/, /'broadcast', 'last', 'first'/, /"all"/);
    throwsTypeError(() => createPushRelay({ mode: 'stream' as never }), /"mode"/);
    throwsTypeError(() => createPushRelay({ storeMessages: 'yes' as never }), /"storeMessages"/);
    throwsTypeError(() => createPushRelay({ maxChannelIdLength: 0 }), /"maxChannelIdLength"/);
    throwsTypeError(() => createPushRelay({ maxChannelSubscribers: 1.5 }), /"maxChannelSubscribers"/);
    throwsTypeError(() => createPushRelay({ channelId: 'id' as never }), /"channelId"/, /function/);
    throwsTypeError(() => createPushRelay({ authorize: true as never }), /"authorize"/);
    throwsTypeError(() => createPushRelay({ channelGroup: '' }), /"channelGroup"/);
    throwsTypeError(() => createPushRelay({ channelGroup: 'a/b' }), /"channelGroup"/);
    throwsTypeError(() => createPushRelay({ defaultContentType: 'text' }), /"defaultContentType"/);
    throwsTypeError(() => createPushRelay({ store: {} as never }), /"store"/);
    throwsTypeError(() => createPushRelay({ messageTimeout: 'soon' }), /"messageTimeout"/, /"soon"/);
    throwsTypeError(() => createPushRelay({ subscriberTimeout: -5 }), /"subscriberTimeout"/);
    throwsTypeError(() => createPushRelay({ maxMessageSize: 'huge' }), /"maxMessageSize"/);
    throwsTypeError(() => createPushRelay('fast' as never), /options must be an object/);
  });

  it('validates endpoint options at factory time too', () => {
    const relay = createPushRelay();
    throwsTypeError(() => relay.publisher({ messageTimeout: 'x' }), /"messageTimeout"/);
    throwsTypeError(() => relay.subscriber({ concurrency: 'any' as never }), /"concurrency"/);
  });

  it('rejects unknown keys and suggests the likely option', () => {
    throwsTypeError(() => createPushRelay({ messageTimout: '1h' } as never), /unknown option "messageTimout"/, /did you mean "messageTimeout"\?/);
    throwsTypeError(() => createPushRelay().subscriber({ concurency: 'last' } as never), /unknown option "concurency"/, /did you mean "concurrency"/);
    // Nothing close: no suggestion, still an error.
    assert.throws(
      () => createPushRelay({ zzzzzzzzzzzz: 1 } as never),
      (err: Error) => err instanceof TypeError && /unknown option "zzzzzzzzzzzz"/.test(err.message) && !/did you mean/.test(err.message),
    );
  });

  it('rejects an option given to the wrong endpoint', () => {
    throwsTypeError(() => createPushRelay().publisher({ concurrency: 'last' } as never), /"concurrency" does not apply to publisher\(\)/);
    throwsTypeError(() => createPushRelay().subscriber({ messageTimeout: '1h' } as never), /"messageTimeout" does not apply to subscriber\(\)/);
    throwsTypeError(() => createPushRelay().publisher({ maxReservedMemory: '1mb' } as never), /"maxReservedMemory" does not apply/);
  });

  it('rejects a minimum buffer larger than the maximum, wherever the two were given', () => {
    throwsTypeError(() => createPushRelay({ minMessageBufferLength: 5, maxMessageBufferLength: 2 }), /"minMessageBufferLength" \(5\).*"maxMessageBufferLength" \(2\)/);
    const relay = createPushRelay({ maxMessageBufferLength: 3 });
    throwsTypeError(() => relay.publisher({ minMessageBufferLength: 4 }), /minMessageBufferLength/);
    assert.doesNotThrow(() => relay.publisher({ minMessageBufferLength: 3 }));
  });

  it('refuses maxReservedMemory beside a store of the user', () => {
    throwsTypeError(() => createPushRelay({ store: new MemoryStore(), maxReservedMemory: '1mb' }), /"maxReservedMemory"/);
  });
});

describe('sizes and durations', () => {
  it('reads sizes as bytes, nginx style too', () => {
    assert.equal(parseSize('32mb', 'x'), 32 * 1024 * 1024);
    assert.equal(parseSize('512k', 'x'), 512 * 1024);
    assert.equal(parseSize('32M', 'x'), 32 * 1024 * 1024);
    assert.equal(parseSize('1kb', 'x'), 1024);
    assert.equal(parseSize(1000, 'x'), 1000);
    assert.equal(new MemoryStore({ maxReservedMemory: '512k' }).maxReservedMemory, 512 * 1024);
    throwsTypeError(() => parseSize('lots', 'maxReservedMemory'), /"maxReservedMemory"/);
    throwsTypeError(() => parseSize(-1, 'maxReservedMemory'), /"maxReservedMemory"/);
  });

  it('refuses a size in a unit it does not know instead of reading the number in front of it', () => {
    for (const typo of ['10MiB', '32 megabytes', '1 zb', '5 apples', 'mb', '']) {
      throwsTypeError(() => parseSize(typo, 'maxMessageSize'), /"maxMessageSize" must be a size/);
    }
    throwsTypeError(() => createPushRelay().publisher({ maxMessageSize: '10MiB' }), /"maxMessageSize".*"10MiB"/);
    assert.equal(parseSize(' 2 mb ', 'x'), 2 * 1024 * 1024);
    assert.equal(parseSize('7 k', 'x'), 7 * 1024);
    assert.equal(parseSize('100', 'x'), 100);
    assert.equal(parseSize('10b', 'x'), 10);
  });

  it('says "a value" when called without an option name', () => {
    throwsTypeError(() => parseDuration('5x'), /^push-relay: a value must be a duration/);
    throwsTypeError(() => parseSize('5x'), /^push-relay: a value must be a size/);
  });

  it('reads durations as milliseconds; 0 means never', () => {
    assert.equal(parseDuration('2h', 'x'), 2 * 3600 * 1000);
    assert.equal(parseDuration('30s', 'x'), 30_000);
    assert.equal(parseDuration(250, 'x'), 250);
    assert.equal(parseDuration(0, 'x'), 0);
    assert.equal(resolvePublisher([{ messageTimeout: 0 }]).rules.messageTimeout, 0);
    throwsTypeError(() => parseDuration(Infinity, 'messageTimeout'), /"messageTimeout"/);
    throwsTypeError(() => parseDuration(NaN, 'messageTimeout'), /"messageTimeout"/);
  });
});

describe('defaults and inheritance relay -> endpoint', () => {
  it('uses the seed defaults', () => {
    const p = resolvePublisher([{}]);
    assert.deepEqual(p.rules, { storeMessages: true, minMessages: 1, maxMessages: 10, messageTimeout: 3600_000, channelTimeout: 0 });
    assert.equal(p.maxMessageSize, 1024 * 1024);
    assert.equal(p.maxChannelIdLength, 512);
    assert.equal(p.channelGroup, undefined);
    const s = resolveSubscriber([{}]);
    assert.equal(s.mode, undefined, 'no mode: the transport is chosen per request');
    assert.equal(s.subscriberFirstMessage, 'oldest');
    assert.equal(s.concurrency, 'broadcast');
    assert.equal(s.subscriberTimeout, 0);
    assert.equal(s.authorizedChannelsOnly, false);
    assert.equal(s.maxChannelSubscribers, 0);
    assert.equal(s.defaultContentType, undefined);
    assert.equal(s.deleteOldestReceivedMessage, false);
  });

  it('lets the endpoint override the relay, and the relay fill in the rest', () => {
    const global = { messageTimeout: '2h', maxMessageBufferLength: 20, channelGroup: 'g', concurrency: 'last' as const, subscriberTimeout: '10s' };
    const p = resolvePublisher([global, { maxMessageBufferLength: 5 }]);
    assert.equal(p.rules.maxMessages, 5);
    assert.equal(p.rules.messageTimeout, 7200_000);
    assert.equal(p.channelGroup, 'g');
    const s = resolveSubscriber([global, { concurrency: 'first' }]);
    assert.equal(s.concurrency, 'first');
    assert.equal(s.subscriberTimeout, 10_000);
    assert.equal(s.channelGroup, 'g');
  });

  it('messageBufferLength sets min and max; an explicit min or max refines it', () => {
    assert.deepEqual(pickBuffer(resolvePublisher([{ messageBufferLength: 4 }])), [4, 4]);
    assert.deepEqual(pickBuffer(resolvePublisher([{ messageBufferLength: 4 }, { maxMessageBufferLength: 6 }])), [4, 6]);
    assert.deepEqual(pickBuffer(resolvePublisher([{ maxMessageBufferLength: 6 }, { messageBufferLength: 2 }])), [2, 2]);
  });
});

function pickBuffer(p: ReturnType<typeof resolvePublisher>): [number, number] {
  return [p.rules.minMessages, p.rules.maxMessages];
}

describe('durations given as small numbers', () => {
  /** What createPushRelay(options) writes to stderr in a child process (no DEBUG: what every app shows). */
  async function logged(options: string): Promise<string> {
    const code = `import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)}).then((m) => m.createPushRelay(${options}).close())`;
    const env = { ...process.env };
    delete env.DEBUG;
    const { stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '-e', code], { env });
    return stderr;
  }

  it('subscriberTimeout: 30 is 30 ms, and a process warning says so where nginx would read seconds', async () => {
    const out = await logged('{ subscriberTimeout: 30, pingInterval: 20 }');
    assert.match(out, /\[PUSH_RELAY_MILLISECONDS\] Warning: push-relay: option "subscriberTimeout" of createPushRelay\(\) is 30 ms: a number is milliseconds \(nginx's push_subscriber_timeout counts seconds\); write '30s' if you meant seconds, or '30ms' to keep it/);
    assert.match(out, /option "pingInterval"/);
  });

  it('says nothing for strings, for 0 (never), or for numbers that are clearly milliseconds', async () => {
    assert.doesNotMatch(await logged("{ subscriberTimeout: '30s', pingInterval: '20ms', messageTimeout: 0, channelTimeout: 5000 }"), /warning/i);
  });
});
