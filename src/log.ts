/** `debug` namespaces: push-relay:publisher, push-relay:subscriber, push-relay:store, push-relay:redis, push-relay:relay, push-relay:events, push-relay:statistics. */
import createDebug from 'debug';

export function log(part: 'publisher' | 'subscriber' | 'store' | 'redis' | 'relay' | 'events' | 'statistics'): createDebug.Debugger {
  return createDebug(`push-relay:${part}`);
}
