/**
 * Which mechanism answers a subscriber request (docs/transports.md). A pinned `mode`
 * wins; without one, the request's headers choose, as Nchan does: `Accept: text/event-stream` ->
 * EventSource, `Accept: multipart/mixed` -> multipart/mixed, `TE: chunked` -> chunked, a WebSocket
 * upgrade -> WebSocket, anything else long-polls. The raw stream is served only when pinned.
 */
import type { IncomingHttpHeaders } from 'node:http';

/**
 * How a subscriber endpoint answers. Left unset, every request picks its own mechanism (docs/transports.md):
 * plain GET long-polls, `Accept: text/event-stream` gets EventSource, `Accept: multipart/mixed`
 * multipart, `TE: chunked` chunked, a WebSocket upgrade WebSocket. Set, it pins the endpoint to one.
 */
export type SubscriberMode = 'long-poll' | 'interval-poll' | 'eventsource' | 'chunked' | 'multipart' | 'raw-stream' | 'websocket';
export type Transport = SubscriberMode;
/** The transports that keep the response open and write every message to it. */
export type StreamTransport = 'eventsource' | 'chunked' | 'multipart' | 'raw-stream';

export function chooseTransport(headers: IncomingHttpHeaders, mode: SubscriberMode | undefined): Transport {
  if (mode) return mode;
  const upgrade = headers.upgrade;
  if (typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket') return 'websocket';
  const accept = headers.accept;
  if (accept) {
    // The first of the two stream types the client lists (with q > 0) wins; wildcards never pick a stream.
    for (const type of mediaTypes(accept)) {
      if (type === 'text/event-stream') return 'eventsource';
      if (type === 'multipart/mixed') return 'multipart';
    }
  }
  const te = headers.te;
  if (typeof te === 'string' && te.split(',').some((coding) => coding.split(';')[0]!.trim().toLowerCase() === 'chunked')) return 'chunked';
  return 'long-poll';
}

/** The media types an Accept header lists with q > 0, lower-cased, in order. */
function mediaTypes(accept: string): string[] {
  const types: string[] = [];
  for (const range of accept.split(',')) {
    const [type, ...params] = range.split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q && !(Number(q.slice(2)) > 0)) continue;
    types.push(type!.trim().toLowerCase());
  }
  return types;
}

/** Whether `transport` keeps the response open and writes every message to it. */
export function isStream(transport: Transport): transport is StreamTransport {
  return transport === 'eventsource' || transport === 'chunked' || transport === 'multipart' || transport === 'raw-stream';
}
