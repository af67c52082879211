import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPushRelay, isProtocolError } from '../src/index.js';
import { channelIdFromQuery, queryArgument } from '../src/options.js';
import { request } from './helpers/http-client.js';
import { serveNodeHttp } from './helpers/servers.js';
import type { IncomingMessage } from 'node:http';

describe('queryArgument (default channel id resolver)', () => {
  const urls = [
    '/a?id=x',
    '/a?x=1&id=hello%20w+o',
    '/a?idx=1&id=2',
    '/a?id=',
    '/a?x=1',
    '/a?id=a#frag',
    '/a?x#id=3',
    '/a?id=1&id=2',
    '/a?%69d=enc',
    '/a?id=%E2%9C%93',
    '/a?id=%zz',
    '/a?id=a+b',
    '/a?&&id=z&',
    '/a?ID=upper',
  ];
  for (const url of urls) {
    it(`reads ${url} as URLSearchParams does`, () => {
      const expected = new URL(`http://host${url}`).searchParams.get('id') ?? undefined;
      assert.equal(queryArgument(url, url.indexOf('?') + 1, 'id'), expected);
    });
  }

  it('finds nothing without a query string', () => {
    assert.equal(channelIdFromQuery({ url: '/activity' } as IncomingMessage), undefined);
    assert.equal(channelIdFromQuery({ url: '/activity?id=c1' } as IncomingMessage), 'c1');
  });
});

describe('the default resolver and a repeated id', () => {
  for (const url of ['/a?id=a&id=b', '/a?id=a&x=1&id=a', '/a?id=%61&id=b', '/a?id=a&id']) {
    it(`${url}: 400, not one of them silently`, () => {
      assert.throws(
        () => channelIdFromQuery({ url } as IncomingMessage),
        (err: unknown) => isProtocolError(err) && err.status === 400 && /id query argument is given more than once/.test(err.message),
      );
    });
  }

  it('answers 400 over HTTP on both endpoints, and publishes nothing', async () => {
    const relay = createPushRelay();
    const server = await serveNodeHttp({ '/pub': relay.publisher(), '/sub': relay.subscriber() });
    try {
      const pub = await request(server.url('/pub?id=a&id=b'), { method: 'POST', body: 'x' });
      const sub = await request(server.url('/sub?id=a&id=b'));
      assert.deepEqual([pub.status, sub.status], [400, 400]);
      assert.match(pub.text, /more than once/);
      assert.equal(await relay.channelInfo('a'), undefined);
    } finally {
      await relay.close();
      await server.close();
    }
  });
});
