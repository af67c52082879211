/**
 * The floor: the least work a Node server can do for each scenario, without push-relay, on Express 5
 * or on bare node:http. It keeps only each channel's newest message (enough for the lockstep load,
 * not a relay), answers long-polls from an array, writes pre-built headers and one shared body, and
 * writes each EventSource frame, and each WebSocket frame (built once, after a handshake done by
 * hand), to the sockets directly. What push-relay costs on top of its host is
 * the difference between its figures and these. `node minimal-app.js <port> express|node-http`.
 */
import express from 'express';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

interface Channel {
  seq: number;
  /** The newest message's answer: headers and body, shared by every subscriber it goes to. */
  headers: string[];
  body: Buffer;
  /** Its EventSource frame as one HTTP chunk. */
  chunk: Buffer;
  waiting: Set<ServerResponse>;
  streams: Set<ServerResponse>;
  sockets: Set<Duplex>;
}

const channels = new Map<string, Channel>();

function channelOf(req: IncomingMessage): Channel {
  const url = req.url ?? '';
  const id = url.slice(url.indexOf('id=') + 3);
  let channel = channels.get(id);
  if (!channel) {
    channel = { seq: -1, headers: [], body: Buffer.alloc(0), chunk: Buffer.alloc(0), waiting: new Set(), streams: new Set(), sockets: new Set() };
    channels.set(id, channel);
  }
  return channel;
}

function publish(req: IncomingMessage, res: ServerResponse): void {
  const channel = channelOf(req);
  if (req.method === 'GET') {
    const text = `active subscribers: ${channel.waiting.size + channel.streams.size + channel.sockets.size}`;
    res.writeHead(200, ['Content-Type', 'text/plain', 'Content-Length', String(text.length)]);
    res.end(text);
    return;
  }
  const parts: Buffer[] = [];
  req.on('data', (part: Buffer) => parts.push(part));
  req.on('end', () => {
    const body = Buffer.concat(parts);
    channel.seq++;
    channel.body = body;
    channel.headers = ['Last-Modified', new Date().toUTCString(), 'Etag', String(channel.seq), 'Content-Type', 'text/plain', 'Content-Length', String(body.length)];
    const frame = `id: ${channel.seq}\ndata: ${body.toString()}\n\n`;
    channel.chunk = Buffer.from(`${frame.length.toString(16)}\r\n${frame}\r\n`);
    const waiting = channel.waiting;
    const count = waiting.size + channel.streams.size + channel.sockets.size;
    const text = `active subscribers: ${count}`;
    res.writeHead(count > 0 ? 201 : 202, ['Content-Type', 'text/plain', 'Content-Length', String(text.length)]);
    res.end(text);
    channel.waiting = new Set();
    for (const parked of waiting) answer(parked, channel);
    for (const stream of channel.streams) stream.socket?.write(channel.chunk);
    if (channel.sockets.size > 0) {
      // One unmasked text frame (body under 126 bytes here), written as is to every socket.
      const frame = Buffer.concat([Buffer.from([0x81, body.length]), body]);
      for (const socket of channel.sockets) socket.write(frame);
    }
  });
}

/** The WebSocket handshake by hand (RFC 6455 section 4.2.2); the socket then only gets frames. */
function upgrade(req: IncomingMessage, socket: Duplex): void {
  const channel = channelOf(req);
  const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  channel.sockets.add(socket);
  socket.on('data', () => {}); // the client sends nothing the floor needs
  socket.once('close', () => channel.sockets.delete(socket));
  socket.on('error', () => socket.destroy());
}

function answer(res: ServerResponse, channel: Channel): void {
  res.writeHead(200, channel.headers);
  res.end(channel.body);
}

function subscribe(req: IncomingMessage, res: ServerResponse): void {
  const channel = channelOf(req);
  if (req.headers.accept === 'text/event-stream') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.flushHeaders();
    channel.streams.add(res);
    res.once('close', () => channel.streams.delete(res));
    return;
  }
  const cursor = req.headers['if-none-match'];
  const has = cursor === undefined ? -1 : Number(cursor);
  if (channel.seq > has) {
    answer(res, channel);
    return;
  }
  channel.waiting.add(res);
  res.once('close', () => channel.waiting.delete(res));
}

const port = Number(process.argv[2]);
const server =
  process.argv[3] === 'express'
    ? createServer(express().all('/publish', publish).get('/activity', subscribe))
    : createServer((req, res) => ((req.url ?? '').startsWith('/publish') ? publish(req, res) : subscribe(req, res)));
server.keepAliveTimeout = 75_000;
server.on('upgrade', upgrade);
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => process.stdout.write(`listening ${port}\n`));
process.once('SIGTERM', () => process.exit(0));
