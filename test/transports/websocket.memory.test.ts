import { MemoryStore } from '../../src/index.js';
import { upgradeSuite, websocketSuite } from './websocket-suite.js';

const memory = async () => {
  const store = new MemoryStore();
  return { store, close: () => store.close() };
};
websocketSuite('memory', memory);
upgradeSuite(memory);
