/** The channel-info answer of the publisher endpoint (every 2xx carries one, rev 2.23 §3.2). */
import etag from 'etag';
import fresh from 'fresh';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatChannelInfo, negotiateInfoType, type ChannelInfo } from '../protocol/channel-info.js';

/** Writes `info` in the format `Accept` asks for; a GET may be answered 304 by `If-None-Match`. */
export function sendChannelInfo(req: IncomingMessage, res: ServerResponse, status: number, info: ChannelInfo): void {
  const headers = req.headers;
  const type = negotiateInfoType(headers.accept);
  // ASCII only (numbers and ids), so its length is its byte length; a string body goes out in one
  // write with the header block.
  const body = formatChannelInfo(info, type);
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
  answer.push('Content-Length', String(body.length));
  res.writeHead(status, answer);
  res.end(body, 'latin1');
}
