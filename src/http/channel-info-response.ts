/** The channel-info answer of the publisher endpoint (every 2xx carries one, rev 2.23 §3.2). */
import etag from 'etag';
import fresh from 'fresh';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatChannelInfo, negotiateInfoType, type ChannelInfo } from '../channel-info.js';

/** Writes `info` in the format `Accept` asks for; a GET may be answered 304 by `If-None-Match`. */
export function sendChannelInfo(req: IncomingMessage, res: ServerResponse, status: number, info: ChannelInfo): void {
  const type = negotiateInfoType(req);
  const body = Buffer.from(formatChannelInfo(info, type), 'utf8');
  const headers: Record<string, string> = {
    'Content-Type': type,
    'Cache-Control': 'no-cache',
    Vary: 'Accept',
  };
  if (req.method === 'GET') {
    headers.ETag = etag(body);
    if (fresh(req.headers, { etag: headers.ETag })) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
  }
  headers['Content-Length'] = String(body.length);
  res.writeHead(status, headers);
  res.end(body);
}
