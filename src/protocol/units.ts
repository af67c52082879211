/** The one place that turns option values into milliseconds and bytes. */
import bytes from 'bytes';
import ms from 'ms';

/** A number of milliseconds, or a string `ms` understands (`'2h'`, `'30s'`); 0 means never. */
export type Duration = number | string;
/** A number of bytes, or a string `bytes` understands (`'32mb'`, `'1kb'`). */
export type Size = number | string;

/** What an error calls the value: the option it was given for, when there is one. */
function named(option: string | undefined): string {
  return option === undefined ? 'a value' : `option "${option}"`;
}

/** `value` in milliseconds; a TypeError naming `option` (when given) for anything else. */
export function parseDuration(value: unknown, option?: string): number {
  const n = typeof value === 'string' ? ms(value as ms.StringValue) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
    throw new TypeError(`push-relay: ${named(option)} must be a duration: milliseconds >= 0 or a string like '30s' or '2h' (got ${describe(value)})`);
  }
  return Math.round(n);
}

/**
 * A size `bytes` reads (b, kb, mb, gb, tb, pb), nginx's k, m, g, t, p, or bare digits. Checked here
 * first: `bytes` itself reads any other unit as the number in front of it ('10MiB' as 10 bytes).
 */
const SIZE = /^\s*\d+(\.\d+)?\s*([kmgtp]?b?)\s*$/i;

/** `value` in bytes; a TypeError naming `option` (when given) for anything else. */
export function parseSize(value: unknown, option?: string): number {
  const unit = typeof value === 'string' ? SIZE.exec(value)?.[2] : '';
  // nginx writes sizes as 32M or 512k: the same with a b.
  const text = typeof value === 'string' ? `${value.trim()}${unit && !/b$/i.test(unit) ? 'b' : ''}` : value;
  const n = unit === undefined ? undefined : typeof text === 'string' ? bytes.parse(text) : text;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
    throw new TypeError(`push-relay: ${named(option)} must be a size: bytes >= 0 or a string like '1mb' or '512k' (got ${describe(value)})`);
  }
  return Math.floor(n);
}

export function formatSize(n: number): string {
  return bytes.format(n) ?? `${n}B`;
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  try {
    return String(JSON.stringify(value) ?? value);
  } catch {
    return String(value);
  }
}
