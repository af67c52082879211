/**
 * The pub/sub payloads the Lua scripts publish, decoded into ChannelEvents. A message wake-up carries
 * the whole message (binary-safe, length-prefixed), so fan-out on every process needs no read:
 *   M\n<id>\n<previous stored id>\n<previousId>\n<content-type bytes|-1>\n<event-type bytes|-1>\n<seq>\n
 *     <event-id bytes|-1>\n<message/http head bytes|-1>\n<kept: max,timeout,recipients>\n<ct><et><ei><head (JSON)><data>
 *   D[\n<notice>]            (deleted; the DELETE's notice, if any)
 *   C\n<subscriber id>      (concurrency "last": all but this one get 409)
 *   X\n<id>                 (a subscriber received the oldest message and it was dropped)
 *   B\n<text>               (a store-wide broadcast, on the store's broadcast channel only)
 */
import type { ChannelEvent } from '../channel-store.js';
import type { Kept } from './channel-view.js';
import type { MessageId } from '../../protocol/message-id.js';
import { fromStreamId } from './stream-ids.js';
import type { HttpResponseHead } from '../../protocol/message-http.js';

const NEWLINE = 0x0a;

type MessageEvent = Extract<ChannelEvent, { type: 'message' }>;

/** A wake-up: a ChannelEvent (a message's says what was kept of it), or one the store keeps to itself. */
export type WakeUp = Exclude<ChannelEvent, MessageEvent> | (MessageEvent & { kept?: Kept | undefined }) | { type: 'dropped'; id: MessageId };

/** Who hears the wake-ups of a channel (RedisStore hands ChannelEvents on to the relay). */
export type WakeUpListener = (channel: string, event: WakeUp) => void;

export function decodeWakeUp(payload: Buffer): WakeUp | undefined {
  switch (payload[0]) {
    case 0x58: { // X
      const id = fromStreamId(payload.toString('latin1', 2));
      return id && { type: 'dropped', id };
    }
    case 0x44: // D
      return payload.length > 2 ? { type: 'deleted', text: payload.subarray(2).toString('utf8') } : { type: 'deleted' };
    case 0x43: // C
      return { type: 'conflict', keep: payload.subarray(2).toString('utf8') };
    case 0x4d: // M
      return decodeMessage(payload);
    case 0x42: // B
      return { type: 'broadcast', text: payload.subarray(2).toString('utf8') };
    default:
      return undefined;
  }
}

function decodeMessage(payload: Buffer): WakeUp | undefined {
  const lines: string[] = [];
  let at = 2;
  for (let i = 0; i < 9; i++) {
    const end = payload.indexOf(NEWLINE, at);
    if (end < 0) return undefined;
    lines.push(payload.toString('latin1', at, end));
    at = end + 1;
  }
  const [id, previous, previousId, ctLength, etLength, seq, eiLength, hLength, keptLine] = lines as [string, string, string, string, string, string, string, string, string];
  const [max, timeout, recipients] = keptLine.split(',').map(Number) as [number, number, number];
  const kept: Kept | undefined = Number.isFinite(max) && Number.isFinite(timeout) && Number.isFinite(recipients) ? { max, timeout, recipients } : undefined;
  const messageId = fromStreamId(id);
  if (!messageId) return undefined;
  const ct = Number(ctLength);
  const et = Number(etLength);
  const contentType = ct >= 0 ? payload.toString('utf8', at, at + ct) : undefined;
  at += Math.max(ct, 0);
  const eventType = et >= 0 ? payload.toString('utf8', at, at + et) : undefined;
  at += Math.max(et, 0);
  const ei = Number(eiLength);
  const eventId = ei >= 0 ? payload.toString('utf8', at, at + ei) : undefined;
  at += Math.max(ei, 0);
  const h = Number(hLength);
  const response = h >= 0 ? responseHead(payload.toString('utf8', at, at + h)) : undefined;
  at += Math.max(h, 0);
  return {
    type: 'message',
    message: { id: messageId, previousId: fromStreamId(previousId), data: payload.subarray(at), contentType, eventType, eventId, seq: Number(seq), ...(response ? { response } : {}) },
    previous: fromStreamId(previous),
    kept,
  };
}

/** A message/http message's status and headers, as the publish script stored them (JSON). */
export function responseHead(json: string): HttpResponseHead | undefined {
  try {
    const head = JSON.parse(json) as HttpResponseHead;
    return Number.isInteger(head.status) && Array.isArray(head.headers) ? head : undefined;
  } catch {
    return undefined;
  }
}
