import { MemoryStore } from '../src/index.js';
import { protocolSuite } from './protocol-suite.js';

protocolSuite('memory', async () => {
  const store = new MemoryStore();
  return { store, close: () => store.close() };
});
