/** What the endpoints of one relay share: the store, the parked subscribers, and whether the relay still serves. */
import { relayClosing } from '../protocol/answers.js';
import type { ChannelStore } from '../store/channel-store.js';
import { ParkedSubscribers } from '../subscriptions/parked-subscribers.js';

export class RelayContext {
  readonly store: ChannelStore;
  readonly parked: ParkedSubscribers;
  closed = false;

  constructor(store: ChannelStore) {
    this.store = store;
    this.parked = new ParkedSubscribers(store);
  }

  assertOpen(): void {
    if (this.closed) throw relayClosing();
  }
}
