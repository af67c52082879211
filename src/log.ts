/** `debug` namespaces: push-relay:publisher, push-relay:subscriber, push-relay:store, push-relay:redis. */
import createDebug from 'debug';

export function log(part: 'publisher' | 'subscriber' | 'store' | 'redis' | 'relay'): createDebug.Debugger {
  return createDebug(`push-relay:${part}`);
}
