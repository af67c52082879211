/** The wildcard-channel options both stores take (push_stream_wildcard_channel_prefix and its limit). */

export interface WildcardOptions {
  wildcardChannelPrefix?: string | undefined;
  maxWildcardChannels?: number | undefined;
}

export function checkWildcardOptions(options: WildcardOptions, store: string): { prefix: string | undefined; max: number } {
  const { wildcardChannelPrefix: prefix, maxWildcardChannels: max = 0 } = options;
  if (prefix !== undefined && (typeof prefix !== 'string' || prefix === '')) {
    throw new TypeError(`push-relay: ${store} option "wildcardChannelPrefix" must be a non-empty string, got ${JSON.stringify(prefix)}`);
  }
  if (!Number.isSafeInteger(max) || max < 0) throw new TypeError(`push-relay: ${store} option "maxWildcardChannels" must be a whole number >= 0, got ${JSON.stringify(max)}`);
  if (max > 0 && prefix === undefined) throw new TypeError(`push-relay: ${store} option "maxWildcardChannels" needs "wildcardChannelPrefix" (which channels are wildcard ones)`);
  return { prefix, max };
}
