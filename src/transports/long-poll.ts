/**
 * Long-poll (push_subscriber long-poll): one message per request. A waiting request is answered with
 * the message exactly as if it had been stored already (rev 2.23 §3.1), or with 410 / 409 / 304.
 */
import type { ServerResponse } from 'node:http';
import { missedBefore } from '../cursor.js';
import { sendMessage } from '../http/message-response.js';
import { sendNotModified, sendText } from '../http/respond.js';
import type { MessageId } from '../message-id.js';
import type { EndReason, ParkedSubscriber } from '../parked-subscribers.js';
import type { StoredMessage } from '../store/channel-store.js';

export class LongPollSubscriber implements ParkedSubscriber {
  slot = -1;
  parked = false;
  gone = false;
  /** One answer per request, whichever comes first. */
  #answered = false;

  constructor(
    readonly id: string,
    readonly channel: string,
    public cursor: MessageId | undefined,
    readonly res: ServerResponse,
    readonly defaultContentType: string | undefined,
    readonly deletesReceived: boolean,
    /** False on a first request without a cursor: there is nothing it could have missed. */
    readonly signalsLoss = true,
  ) {}

  deliver(message: StoredMessage): boolean {
    if (this.#answered) return true;
    this.#answered = true;
    sendMessage(this.res, message, this.defaultContentType, this.signalsLoss && missedBefore(this.cursor, message));
    return true;
  }

  end(reason: EndReason): void {
    if (this.#answered) return;
    this.#answered = true;
    const res = this.res;
    switch (reason) {
      case 'timeout':
        // The old module's answer (Nchan's 408 means the client was too slow to send its request).
        sendNotModified(res, this.cursor);
        break;
      case 'deleted':
        sendText(res, 410, 'push-relay: channel deleted');
        break;
      case 'conflict':
        sendText(res, 409, 'push-relay: a newer subscriber request took over this channel (concurrency "last")');
        break;
      case 'closing':
        sendText(res, 503, 'push-relay: the relay is shutting down', { 'Retry-After': '1', Connection: 'close' });
        break;
      case 'unavailable':
        sendText(res, 503, 'push-relay: the channel store is unavailable', { 'Retry-After': '1' });
        break;
    }
  }
}
