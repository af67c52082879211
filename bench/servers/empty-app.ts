/**
 * Baselines without push-relay: an empty Express 5 app and a bare node:http server answering
 * /publish and /activity with a 202 and a channel-info-sized body, after reading the request body.
 * They show what the framework alone costs per request: push-relay cannot go faster than its host.
 * `node empty-app.js <port> express|node-http`.
 */
import express from 'express';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const body = Buffer.from('queued messages: 1\r\nlast requested: -1 sec. ago\r\nactive subscribers: 0\r\nlast message id: 1795340901:0');

function answer(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  req.on('end', () => {
    res.writeHead(202, { 'Content-Type': 'text/plain', 'Content-Length': String(body.length) });
    res.end(body);
  });
}

const port = Number(process.argv[2]);
const server = process.argv[3] === 'express' ? createServer(express().all('/publish', answer).get('/activity', answer)) : createServer(answer);
server.keepAliveTimeout = 75_000;
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => process.stdout.write(`listening ${port}\n`));
process.once('SIGTERM', () => process.exit(0));
