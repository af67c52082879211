import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatChannelInfo, negotiateInfoType, type ChannelInfo } from '../../src/protocol/channel-info.js';

const info: ChannelInfo = { messages: 1, requested: -1, subscribers: 0, lastMessageId: { time: 1795340901, tag: 0 } };
const accept = (value?: string) => negotiateInfoType(value);

describe('channel info formats (docs/protocol.md, byte for byte)', () => {
  it('text/plain', () => {
    assert.equal(
      formatChannelInfo(info, 'text/plain'),
      'queued messages: 1\r\nlast requested: -1 sec. ago\r\nactive subscribers: 0\r\nlast message id: 1795340901:0',
    );
  });

  it('JSON (text/json and application/json)', () => {
    const expected = '{"messages": 1, "requested": -1, "subscribers": 0, "last_message_id": "1795340901:0" }';
    assert.equal(formatChannelInfo(info, 'text/json'), expected);
    assert.equal(formatChannelInfo(info, 'application/json'), expected);
    assert.deepEqual(JSON.parse(expected), { messages: 1, requested: -1, subscribers: 0, last_message_id: '1795340901:0' });
  });

  it('XML (text/xml and application/xml)', () => {
    const expected =
      '<?xml version="1.0" encoding="UTF-8" ?>\r\n<channel>\r\n  <messages>1</messages>\r\n  <requested>-1</requested>\r\n' +
      '  <subscribers>0</subscribers>\r\n  <last_message_id>1795340901:0</last_message_id>\r\n</channel>';
    assert.equal(formatChannelInfo(info, 'text/xml'), expected);
    assert.equal(formatChannelInfo(info, 'application/xml'), expected);
  });

  it('YAML (text/yaml, application/yaml, application/x-yaml)', () => {
    const expected = '---\r\nmessages: 1\r\nrequested: -1\r\nsubscribers: 0\r\nlast_message_id: "1795340901:0"\r\n\r\n';
    for (const type of ['text/yaml', 'application/yaml', 'application/x-yaml'] as const) assert.equal(formatChannelInfo(info, type), expected);
  });

  it('prints 0:0 for a channel that never had a message, and the counts given', () => {
    const text = formatChannelInfo({ messages: 0, requested: 12, subscribers: 3, lastMessageId: undefined }, 'text/plain');
    assert.equal(text, 'queued messages: 0\r\nlast requested: 12 sec. ago\r\nactive subscribers: 3\r\nlast message id: 0:0');
  });
});

describe('Accept negotiation', () => {
  it('defaults to text/plain without Accept, with */*, or with nothing we speak', () => {
    assert.equal(accept(), 'text/plain');
    assert.equal(accept('*/*'), 'text/plain');
    assert.equal(accept('image/png'), 'text/plain');
  });

  it('answers the media type asked for', () => {
    for (const type of ['text/json', 'application/json', 'text/xml', 'application/xml', 'text/yaml', 'application/yaml', 'application/x-yaml']) {
      assert.equal(accept(type), type);
    }
  });

  it('honours q-values and takes the first of equal preference', () => {
    assert.equal(accept('text/plain;q=0.1, application/json;q=0.9'), 'application/json');
    assert.equal(accept('application/xml;q=0.5, text/yaml'), 'text/yaml');
    assert.equal(accept('application/json, text/xml'), 'application/json');
    assert.equal(accept('text/xml, application/json'), 'text/xml');
    assert.equal(accept('application/json;q=0, text/xml;q=0.2'), 'text/xml');
  });
});
