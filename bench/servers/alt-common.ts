/**
 * What the alternative servers (bench/servers/alt-*.ts: Node push servers that are not push-relay)
 * share: listening as the benchmark expects, and the text/plain channel info the load generator's
 * probe reads (`active subscribers: N`).
 */
import type { Express, Request, Response } from 'express';
import { createServer } from 'node:http';

export interface ChannelInfo {
  /** Messages the server keeps for the channel. */
  queued: number;
  /** Seconds since a subscriber last asked, or -1 when the server cannot tell. */
  lastRequestedSec: number;
  /** Subscribers waiting (long-poll) or connected (EventSource) now. */
  subscribers: number;
  /** The newest message's id, or '' when there is none. */
  lastMessageId: string;
}

/** The `id` query argument, or undefined after answering 400 when there is none. */
export function channelId(req: Request, res: Response): string | undefined {
  const id = req.query.id;
  if (typeof id === 'string' && id !== '') return id;
  res.status(400).send('No channel id provided.');
  return undefined;
}

/** The push module's text/plain channel info (as its publisher answers a POST or a GET). */
export function channelInfoText(info: ChannelInfo): string {
  return (
    `queued messages: ${info.queued}\r\n` +
    `last requested: ${info.lastRequestedSec} sec. ago\r\n` +
    `active subscribers: ${info.subscribers}\r\n` +
    `last message id: ${info.lastMessageId}`
  );
}

/** Listens on the port bench/run.ts passes (argv[2]), prints `listening <port>`, exits on SIGTERM. */
export function listen(app: Express): void {
  const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
  const server = createServer(app);
  // As the push-relay servers (bench/servers/serve.ts) and nginx (keepalive_timeout 75s).
  server.keepAliveTimeout = 75_000;
  server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => process.stdout.write(`listening ${port}\n`));
  const stop = () => {
    server.closeAllConnections();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
