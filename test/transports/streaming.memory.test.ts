import { MemoryStore } from '../../src/index.js';
import { streamingSuite } from './streaming-suite.js';

streamingSuite('memory', async () => {
  const store = new MemoryStore();
  return { store, close: () => store.close() };
});
