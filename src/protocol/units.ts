/** The one place that turns option values into milliseconds and bytes. */
import bytes from 'bytes';
import ms from 'ms';

/** A number of milliseconds, or a string `ms` understands (`'2h'`, `'30s'`); 0 means never. */
export type Duration = number | string;
/** A number of bytes, or a string `bytes` understands (`'32mb'`, `'1kb'`). */
export type Size = number | string;

export function parseDuration(value: unknown, option: string): number {
  const n = typeof value === 'string' ? ms(value as ms.StringValue) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
    throw new TypeError(`push-relay: option "${option}" must be a duration: milliseconds >= 0 or a string like '30s' or '2h' (got ${describe(value)})`);
  }
  return Math.round(n);
}

export function parseSize(value: unknown, option: string): number {
  // nginx writes sizes as 32M or 512k: accept those too.
  const text = typeof value === 'string' && /^\s*\d+(\.\d+)?\s*[kmgtp]\s*$/i.test(value) ? `${value.trim()}b` : value;
  const n = typeof text === 'string' ? bytes.parse(text) : text;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
    throw new TypeError(`push-relay: option "${option}" must be a size: bytes >= 0 or a string like '1mb' or '512k' (got ${describe(value)})`);
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
