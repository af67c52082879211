/**
 * WebSocket: asks for `ws+meta.push-relay` (push-relay) and `ws+meta.nchan` (Nchan), whose frames
 * start with `id:` and `content-type:` lines (push-relay adds `event:` and `missed:`), a blank line,
 * then the body. Resumes with `last_event_id`. The close code says why a socket ended.
 */
import { withLastId, type Connect, type Connection, type Missed, type Sink, type WireMeta } from './wire.js';

// Nchan's first: Nchan matches the start of the header only; push-relay picks its own wherever it is.
const PROTOCOLS = ['ws+meta.nchan', 'ws+meta.push-relay'];
/** Close codes that end the subscription (4000 + the HTTP status a long-poll would get). */
const ENDS: Record<number, 'deleted' | 'conflict' | 'forbidden'> = { 4410: 'deleted', 4409: 'conflict', 4403: 'forbidden' };

export function webSocket(c: Connect, sink: Sink): Connection | undefined {
  const WS = c.WebSocket;
  if (!WS) return undefined;
  const url = withLastId(c.url, c.lastId).replace(/^http/, 'ws');
  const ws = new WS(url, PROTOCOLS);
  ws.binaryType = 'arraybuffer';
  let done = false;
  const finish = () => {
    done = true;
    ws.onopen = ws.onmessage = ws.onclose = null;
    // Not null: the `ws` package emits 'error' when a socket closes while connecting, and an
    // 'error' nobody listens to would end a Node process.
    ws.onerror = () => {};
  };
  ws.onopen = () => sink.opened();
  ws.onmessage = (e) => {
    const meta = Boolean(ws.protocol);
    const frame = typeof e.data === 'string' ? e.data : new Uint8Array(e.data as ArrayBuffer);
    if (!meta) return sink.message(frame, { id: undefined, contentType: undefined, eventType: undefined });
    // A frame without the metadata head (not from push-relay or Nchan): its body, without an id.
    const parsed = parseFrame(frame) ?? { body: frame, meta: { id: undefined, contentType: undefined, eventType: undefined }, missed: undefined };
    sink.message(parsed.body, parsed.meta, parsed.missed);
  };
  ws.onclose = (e) => {
    finish();
    // Nchan closes with 1001 "410 Gone" and 1000 "408 Request Timeout".
    const reason = ENDS[e.code] ?? ENDS[4000 + Number(/^(4\d\d) /.exec(e.reason)?.[1])];
    if (reason) sink.ended({ reason, status: e.code, detail: e.reason });
    // 4408: the subscriber time-out; come back at once.
    else sink.dropped(e.code === 4408 || e.reason.startsWith('408') ? 0 : undefined, new Error(`WebSocket closed (${e.code})`));
  };
  ws.onerror = () => {};
  return {
    close() {
      if (done) return;
      finish();
      ws.close(1000);
    },
  };
}

/** Splits a meta frame into its header lines and body; undefined when it has no header. */
function parseFrame(frame: string | Uint8Array): { meta: WireMeta; missed: Missed | undefined; body: string | Uint8Array } | undefined {
  let head: string;
  let body: string | Uint8Array;
  if (typeof frame === 'string') {
    const end = frame.indexOf('\n\n');
    if (end < 0) return undefined;
    head = frame.slice(0, end);
    body = frame.slice(end + 2);
  } else {
    let end = -1;
    for (let i = 0; i < Math.min(frame.length - 1, 4096); i++) {
      if (frame[i] === 10 && frame[i + 1] === 10) {
        end = i;
        break;
      }
    }
    if (end < 0) return undefined;
    head = new TextDecoder().decode(frame.subarray(0, end));
    body = frame.subarray(end + 2);
  }
  const meta: WireMeta = { id: undefined, contentType: undefined, eventType: undefined };
  let missed: Missed | undefined;
  for (const line of head.split('\n')) {
    const colon = line.indexOf(': ');
    const name = line.slice(0, colon);
    const value = line.slice(colon + 2);
    if (name === 'id') meta.id = value;
    else if (name === 'content-type') meta.contentType = value;
    else if (name === 'event') meta.eventType = value;
    else if (name === 'missed') missed = {};
  }
  return { meta, missed, body };
}
