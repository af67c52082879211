/**
 * Long-poll: one GET per message. The position travels as `last_event_id` (no custom header, so no
 * CORS preflight, and a new URL each time, so no browser cache in the way); the answer's
 * `Last-Modified` + `Etag` name the message. 304 (push-relay) and 408 (Nchan) mean "nothing yet".
 */
import { endOfStatus, isTextType, retryAfter, withLastId, type Connect, type Connection, type Sink } from './wire.js';

export function longPoll(c: Connect, sink: Sink): Connection {
  const abort = new AbortController();
  let lastId = c.lastId;
  let open = false;
  const opened = () => {
    if (!open) sink.opened();
    open = true;
  };
  // A request held open this long without an error counts as open: the relay is waiting for a message.
  const heldOpen = setTimeout(opened, 1500);

  async function poll(): Promise<void> {
    for (;;) {
      const res = await fetch(withLastId(c.url, lastId), {
        headers: c.headers,
        cache: 'no-store',
        credentials: c.withCredentials ? 'include' : 'same-origin',
        signal: abort.signal,
      } as RequestInit);
      const status = res.status;
      if (status === 200) {
        const contentType = res.headers.get('content-type') ?? undefined;
        const data = isTextType(contentType) ? await res.text() : new Uint8Array(await res.arrayBuffer());
        opened();
        const id = idOf(res.headers);
        if (id === undefined) {
          // Without Last-Modified + Etag (hidden cross-origin, or stripped by a proxy) there is no next
          // position to ask for: polling again would get this message again.
          return sink.dropped(undefined, new Error('long-poll answer without Last-Modified and Etag: expose them (Access-Control-Expose-Headers) or let them through'), true);
        }
        const missed = res.headers.get('x-push-relay-missed') ? { after: lastId, next: id } : undefined;
        lastId = id;
        sink.message(data, { id, contentType, eventType: undefined }, missed);
        continue;
      }
      const body = await res.text();
      if (status === 304 || status === 408) {
        opened();
        continue;
      }
      const end = endOfStatus(status, body.trim());
      if (end) return sink.ended(end);
      return sink.dropped(retryAfter(res.headers.get('retry-after')), new Error(`HTTP ${status}`), true);
    }
  }
  poll().catch((err: unknown) => {
    if (!abort.signal.aborted) sink.dropped(undefined, err);
  }).finally(() => clearTimeout(heldOpen));
  return {
    close() {
      clearTimeout(heldOpen);
      abort.abort();
    },
  };
}

/** The id a long-poll answer names: `<Last-Modified second>:<Etag>`, or the relay's composite Etag. */
function idOf(headers: { get(name: string): string | null }): string | undefined {
  const etag = headers.get('etag')?.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
  if (!etag) return undefined;
  if (etag.startsWith('M')) return etag;
  const time = Date.parse(headers.get('last-modified') ?? '');
  return Number.isFinite(time) ? `${time / 1000}:${etag}` : undefined;
}
