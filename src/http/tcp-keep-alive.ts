/**
 * TCP keep-alive on a subscriber's connection, so that a client that vanished (a laptop closed, a
 * phone off the network, a NAT that forgot the flow) is noticed even when nothing is written to it:
 * a long-poll that waits for hours, or a stream between pings. The kernel probes the idle connection
 * after `delay` ms and resets it when the peer does not answer; the relay then counts the subscriber
 * out and frees its slot.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

const SET = Symbol('push-relay.tcpKeepAlive');
type MarkedSocket = Socket & { [SET]?: number };

/** Sets it once per connection (a keep-alive connection re-polls on the same socket). */
export function enableTcpKeepAlive(req: IncomingMessage, delay: number): void {
  // HTTP/2 streams share one session socket that Node does not let a request touch.
  if (delay <= 0 || req.httpVersionMajor >= 2) return;
  const socket = req.socket as MarkedSocket | null;
  if (!socket || socket[SET] === delay || typeof socket.setKeepAlive !== 'function') return;
  socket.setKeepAlive(true, delay);
  socket[SET] = delay;
}
