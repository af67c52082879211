import { MemoryStore } from '../src/index.js';
import { multiplexSuite } from './multiplex-suite.js';

multiplexSuite('memory', async () => {
  const store = new MemoryStore();
  return { store, close: () => store.close() };
});
