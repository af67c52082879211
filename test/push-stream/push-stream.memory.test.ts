import { MemoryStore } from '../../src/index.js';
import { pushStreamSuite } from './push-stream-suite.js';

pushStreamSuite('memory', async () => {
  const store = new MemoryStore();
  return { store, close: () => store.close() };
});
