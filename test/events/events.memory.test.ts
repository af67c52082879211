/** The events suite on MemoryStore: two relays sharing one store. */
import { MemoryStore } from '../../src/index.js';
import { eventsSuite } from './events-suite.js';

eventsSuite('memory', async () => {
  const store = new MemoryStore();
  return { a: store, b: store, close: () => store.close() };
});
