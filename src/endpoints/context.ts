/** What the endpoints of one relay share: the store, the parked subscribers, and whether the relay still serves. */
import { relayClosing } from '../protocol/answers.js';
import type { ChannelStore } from '../store/channel-store.js';
import { ParkedSubscribers } from '../subscriptions/parked-subscribers.js';
import { Backlog } from '../transports/backlog.js';

export class RelayContext {
  readonly store: ChannelStore;
  readonly parked: ParkedSubscribers;
  /** What the relay's streams leave unread, together. */
  readonly backlog: Backlog;
  closed = false;

  constructor(store: ChannelStore, maxTotalBacklog: number) {
    this.store = store;
    this.parked = new ParkedSubscribers(store);
    this.backlog = new Backlog(maxTotalBacklog);
  }

  assertOpen(): void {
    if (this.closed) throw relayClosing();
  }
}
