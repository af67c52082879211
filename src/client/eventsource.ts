/**
 * EventSource (server-sent events), read with fetch rather than the browser's EventSource: the client
 * sees the HTTP status (a 404 or 410 ends the subscription, where EventSource would only say
 * "error"), `Retry-After`, the `retry:` field, and may send headers; and it runs in Node.
 */
import { endOfStatus, retryAfter, withLastId, type Connect, type Connection, type Missed, type Sink } from './wire.js';

export function eventSource(c: Connect, sink: Sink): Connection {
  const abort = new AbortController();
  /** The last `retry:` field: the delay the server asks for when it ends the stream. */
  let hint: number | undefined;
  let missed: Missed | undefined;
  let lastId = c.lastId;

  /** One event: the relay's own (missed, end) or a message. False once the stream must stop. */
  function dispatch(event: string, data: string, id: string | undefined): boolean {
    if (event === 'push-relay-missed') {
      try {
        missed = JSON.parse(data) as Missed;
      } catch {
        missed = {};
      }
      return true;
    }
    if (event === 'push-relay-end') {
      const [reason = '', channel] = data.split('\n');
      if (reason === 'deleted' || reason === 'conflict') sink.ended({ reason, detail: channel });
      else if (reason === 'revoked') sink.ended({ reason: 'forbidden', detail: reason });
      // The `retry:` the end carries is the server's delay for this reconnection (spread at random).
      else sink.dropped(reason === 'timeout' ? 0 : hint);
      return false;
    }
    // An event without an `id:` has none of its own (it is not a repeat of the last one).
    if (id !== undefined) lastId = id;
    let body: string | Uint8Array = data;
    let binary = event === 'binary';
    if (binary) {
      try {
        body = Uint8Array.from(atob(data), (ch) => ch.charCodeAt(0));
      } catch {
        // A publisher's own event named "binary", with a text body.
        binary = false;
      }
    }
    sink.message(body, { id, contentType: binary ? 'application/octet-stream' : undefined, eventType: event === 'message' || binary ? undefined : event }, missed);
    missed = undefined;
    return true;
  }

  async function read(): Promise<void> {
    const res = await fetch(withLastId(c.url, lastId), {
      headers: { ...c.headers, Accept: 'text/event-stream' },
      cache: 'no-store',
      credentials: c.withCredentials ? 'include' : 'same-origin',
      signal: abort.signal,
    } as RequestInit);
    if (res.status !== 200 || !/^text\/event-stream/i.test(res.headers.get('content-type') ?? '')) {
      const body = await res.text();
      const end = endOfStatus(res.status, body.trim());
      if (end) return sink.ended(end);
      // An answer that is not a stream (a 200 message, a 304): this endpoint does not speak EventSource
      // (try the next transport). A 5xx: it does, and is unavailable for now.
      return sink.dropped(retryAfter(res.headers.get('retry-after')), new Error(`HTTP ${res.status}`), res.status >= 500);
    }
    sink.opened();
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    // Silent for too long (not even a ping: a half-open connection after a sleep or a network change): reopen.
    let idle: ReturnType<typeof setTimeout> | undefined;
    const watch = () => {
      clearTimeout(idle);
      if (c.idleTimeout > 0) idle = setTimeout(() => (abort.abort(), sink.dropped(undefined, new Error(`no data for ${c.idleTimeout} ms`))), c.idleTimeout);
    };
    abort.signal.addEventListener('abort', () => clearTimeout(idle));
    watch();
    let buffer = '';
    let event = '';
    let data: string[] = [];
    let id: string | undefined;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      watch();
      buffer += value;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, buffer[nl - 1] === '\r' ? nl - 1 : nl);
        buffer = buffer.slice(nl + 1);
        if (line === '') {
          if (data.length > 0 && !dispatch(event || 'message', data.join('\n'), id)) return abort.abort();
          event = '';
          data = [];
          id = undefined;
          continue;
        }
        const colon = line.indexOf(':');
        if (colon === 0) {
          // Nchan ends a stream with a comment naming the HTTP status: `:410: 410 Gone`.
          const status = /^:(4\d\d):/.exec(line)?.[1];
          if (status === '410' || status === '409') return (abort.abort(), sink.ended({ reason: status === '410' ? 'deleted' : 'conflict', status: Number(status) }));
          if (status === '408') return (abort.abort(), sink.dropped(0));
          continue;
        }
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1));
        if (field === 'data') data.push(val);
        else if (field === 'event') event = val;
        else if (field === 'id') id = val;
        else if (field === 'retry' && /^\d+$/.test(val)) hint = Number(val);
      }
    }
    // The stream ended without an end event (a proxy cut it, the server went away): back off.
    abort.abort();
    sink.dropped();
  }
  read().catch((err: unknown) => {
    if (!abort.signal.aborted) sink.dropped(undefined, err);
  });
  return { close: () => abort.abort() };
}
