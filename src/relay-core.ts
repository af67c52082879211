/** What the middlewares share: the store, the parked subscribers, and whether the relay still serves. */
import { protocolError } from './http/protocol-error.js';
import { ParkedSubscribers } from './parked-subscribers.js';
import type { ChannelStore } from './store/channel-store.js';

export class RelayCore {
  readonly store: ChannelStore;
  readonly parked: ParkedSubscribers;
  closed = false;

  constructor(store: ChannelStore) {
    this.store = store;
    this.parked = new ParkedSubscribers(store);
  }

  assertOpen(): void {
    if (this.closed) throw protocolError(503, 'push-relay: the relay is shutting down', 'relay.closed', { 'Retry-After': '1' });
  }
}
