/**
 * What every transport is to a subscription (subscriptions/subscription.ts): something that writes
 * a message in its own framing, and says an ending in its own framing. A transport serves one
 * subscription of one or several channels; with several, messages are named by the subscription's
 * composite cursor (`position`) instead of their own id.
 */
import type { EndReason } from '../protocol/answers.js';
import type { MessageId } from '../protocol/message-id.js';
import type { Cursors } from '../protocol/position.js';
import type { StoredMessage } from '../store/channel-store.js';
import type { Backlog } from './backlog.js';
import type { Padding, Templates } from '../protocol/templates.js';

export interface SubscriberTransport {
  /**
   * Writes `message`. `gapAfter`: the client's cursor on that channel when messages between it and
   * this one are lost (the loss signal), else undefined. `position`: the composite cursor once the
   * client has this message, undefined with one channel (the message's own id names it). True when
   * that answered the request (a long-poll's one answer), false to go on (streams). `channel`: the
   * id of the message's channel (`~channel~` of templates).
   */
  send(message: StoredMessage, gapAfter: MessageId | undefined, position: string | undefined, channel: string): boolean;
  /**
   * Ends without a message. `endedBy`: the channel that caused it, when there are several; `channel`:
   * that channel's id whether or not there are several (the channel deleted message names it);
   * `notice`: a DELETE's own text for the channel deleted message (channelDeletedMessageText).
   */
  end(reason: EndReason, endedBy: string | undefined, cursors: Cursors, channel?: string, notice?: string): void;
  /** Counted in on every channel: open the stream now (headers, handshake) if nothing opened it. */
  open(): void;
  /** The client left: stop keep-alives. */
  dispose(): void;
  /** Writing failed (it threw): cut the connection, the client resumes from the last id it has. */
  abort(err: unknown): void;
  /** Whether the client has left already. */
  readonly closed: boolean;
  /** Calls `listener` once when the client leaves. */
  onClose(listener: () => void): void;
}

export interface TransportSettings {
  /** Content-Type of messages published without one. */
  defaultContentType: string | undefined;
  /** ms between keep-alive frames, 0 = none (only streams and WebSocket ping). */
  pingInterval: number;
  /** What the relay's streams leave unread, together (maxTotalBacklog). */
  backlog: Backlog;
  /** What one stream may leave unread before it is cut (maxStreamBacklog; it resumes from its last id). */
  maxStreamBacklog: number;
  /** The endpoint's templates, if it has any: without, every transport sends bodies as they are. */
  templates?: Templates | undefined;
  /** This request's padding (padding by user agent), if a rule matched. */
  padding?: Padding | undefined;
}

/** A header value or event name cannot hold a line break: anything after one would be a line of its own. */
export function oneLine(value: string): string {
  return value.replace(/[\r\n]+/g, ' ');
}
