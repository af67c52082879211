import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { channelIdFromQuery, queryArgument } from '../src/options.js';
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
