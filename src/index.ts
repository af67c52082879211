export { createPushRelay, type PushRelay, type PublishOptions, type RequestListener } from './relay.js';
export type { Middleware } from './http/respond.js';
export { WEBSOCKET_META_PROTOCOL, type UpgradeApp } from './http/upgrade.js';
export { CLOSE_CODES as WEBSOCKET_CLOSE_CODES } from './transports/websocket.js';
export {
  channelIdFromQuery,
  channelsFromPath,
  type AllowOrigin,
  type AuthorizeHook,
  type ChannelEntry,
  type ChannelIds,
  type ChannelIdResolver,
  type Concurrency,
  type FirstMessagePolicy,
  type PublisherOptions,
  type PushRelayOptions,
  type Role,
  type StatisticsOptions,
  type SubscriberMode,
  type SubscriberOptions,
} from './options.js';
export { MemoryStore, type MemoryStoreOptions } from './store/memory/memory-store.js';
export type {
  BufferRules,
  ChannelEvent,
  ChannelListener,
  ChannelStats,
  ChannelStore,
  LifecycleEvent,
  JoinRequest,
  JoinResult,
  NewMessage,
  NextOrJoinResult,
  NextResult,
  PublishResult,
  StoredMessage,
  StoreSummary,
  StoreWorker,
} from './store/channel-store.js';
export type { ChannelStatistics, StatisticsSummary, WorkerStatistics } from './protocol/statistics.js';
export type { ChannelLifecycleEvent, PublishEvent, RelayEventMap } from './endpoints/context.js';
export type { SubscriberEvent } from './subscriptions/presence.js';
export { DEFAULT_BUFFER_RULES, expiryOf, isExpired, overflow, receivedEnough } from './protocol/buffer-rules.js';
export { formatChannelInfo, type ChannelInfo, type ChannelInfoType } from './protocol/channel-info.js';
export { compareIds, firstId, formatId, nextId, parseId, type Cursor, type MessageId } from './protocol/message-id.js';
export { cursorAhead, readCursor, httpDate } from './protocol/cursor.js';
export type { HttpResponseHead } from './protocol/message-http.js';
export { protocolError, isProtocolError, type ProtocolError } from './protocol/protocol-error.js';
export { formatSize, parseDuration, parseSize, type Duration, type Size } from './protocol/units.js';
