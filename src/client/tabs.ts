/**
 * One connection for every tab of an origin: the tab holding a Web Lock is the leader and connects;
 * it posts what it receives on a BroadcastChannel, which the other tabs read. When the leader's tab
 * closes, the browser releases its lock and the next tab in line connects from the last id it heard,
 * so nothing is lost in the handover.
 */

interface Locks {
  request(name: string, options: { signal: AbortSignal }, callback: () => Promise<void>): Promise<unknown>;
}
interface Channel {
  postMessage(message: unknown): void;
  onmessage: ((e: { data: unknown }) => void) | null;
  close(): void;
}

export interface Tabs {
  post(message: unknown): void;
  close(): void;
}

/** Undefined when this runtime has no Web Locks or BroadcastChannel: the caller connects on its own. */
export function shareAcrossTabs(name: string, lead: () => void, hear: (message: unknown) => void): Tabs | undefined {
  const g = globalThis as unknown as { navigator?: { locks?: Locks }; BroadcastChannel?: new (name: string) => Channel };
  const locks = g.navigator?.locks;
  if (!locks || !g.BroadcastChannel) return undefined;
  const channel = new g.BroadcastChannel(name);
  channel.onmessage = (e) => hear(e.data);
  const abort = new AbortController();
  let release: (() => void) | undefined;
  locks
    .request(name, { signal: abort.signal }, () => {
      lead();
      return new Promise<void>((resolve) => (release = resolve));
    })
    .catch(() => {});
  return {
    post: (message) => channel.postMessage(message),
    close() {
      abort.abort();
      release?.();
      channel.close();
    },
  };
}
