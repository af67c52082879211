/**
 * Which mechanism answers a subscriber request (SPEC "Which mechanism answers"). A pinned `mode`
 * wins; without one, the request's headers choose, as Nchan does: `Accept: text/event-stream` ->
 * EventSource, `Accept: multipart/mixed` -> multipart/mixed, `TE: chunked` -> chunked, a WebSocket
 * upgrade -> WebSocket, anything else long-polls. The raw stream is served only when pinned.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { SubscriberMode } from '../options.js';

export type Transport = SubscriberMode;

export function selectTransport(headers: IncomingHttpHeaders, mode: SubscriberMode | undefined): Transport {
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
export function isStream(transport: Transport): transport is 'eventsource' | 'chunked' | 'multipart' | 'raw-stream' {
  return transport === 'eventsource' || transport === 'chunked' || transport === 'multipart' || transport === 'raw-stream';
}
