/** A ParkedSubscriber without HTTP, for the registry's own tests: it records what it was given. */
import type { MessageId, StoredMessage } from '../../src/index.js';
import type { EndReason, ParkedSubscriber } from '../../src/subscriptions/parked-subscribers.js';

export class FakeSubscriber implements ParkedSubscriber {
  slot = -1;
  parked = false;
  gone = false;
  /** Message bodies delivered, and `end:<reason>` for an end. */
  readonly got: string[] = [];
  constructor(
    readonly id: string,
    readonly channel: string,
    public cursor: MessageId | undefined,
    /** Stays parked after a delivery, as a stream does; else answered by it, as a long-poll. */
    readonly streams = false,
  ) {}
  deliver(message: StoredMessage): boolean {
    if (this.failWith) throw this.failWith;
    this.got.push(message.data.toString());
    return !this.streams;
  }
  reposition(cursor: MessageId): void {
    this.cursor = cursor;
  }
  /** Set to make deliver() throw, as a transport with a broken socket or header would. */
  failWith: Error | undefined;
  end(reason: EndReason): void {
    this.got.push(`end:${reason}`);
  }
  abort(err: unknown): void {
    this.got.push(`abort:${(err as Error).message}`);
  }
}
