/** The channel-info answer of the publisher endpoint (every 2xx carries one, rev 2.23 §3.2). */
import etag from 'etag';
import fresh from 'fresh';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatChannelInfo, formatChannelInfoList, negotiateInfoType, type ChannelInfo } from '../protocol/channel-info.js';

/**
 * Writes `info` (one channel's, or a list naming each channel) in the format `Accept` asks for; a GET
 * may be answered 304 by `If-None-Match`. `empty`: the same answer without a body
 * (channelInfoOnPublish false).
 */
export function sendChannelInfo(req: IncomingMessage, res: ServerResponse, status: number, info: ChannelInfo | ReadonlyArray<{ channel: string; info: ChannelInfo }>, empty = false): void {
  const headers = req.headers;
  if (empty) {
    res.writeHead(status, ['Cache-Control', 'no-cache', 'Content-Length', '0']);
    res.end();
    return;
  }
  const type = negotiateInfoType(headers.accept);
  const single = !Array.isArray(info);
  // One channel's info is ASCII only (numbers), so its length is its byte length; a string body goes
  // out in one write with the header block. A list names the channels, which may be any text.
  const body = single ? formatChannelInfo(info as ChannelInfo, type) : formatChannelInfoList(info as ReadonlyArray<{ channel: string; info: ChannelInfo }>, type);
  const answer = ['Content-Type', type, 'Cache-Control', 'no-cache', 'Vary', 'Accept'];
  if (req.method === 'GET') {
    const tag = etag(body);
    answer.push('ETag', tag);
    if (fresh(headers, { etag: tag })) {
      res.writeHead(304, answer);
      res.end();
      return;
    }
  }
  answer.push('Content-Length', String(single ? body.length : Buffer.byteLength(body)));
  res.writeHead(status, answer);
  res.end(body, single ? 'latin1' : 'utf8');
}
