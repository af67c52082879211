/**
 * Debian's Chromium, driven by playwright-core (no browser download), for the browser tests. Without
 * Chromium at CHROMIUM_PATH (default /usr/bin/chromium) those tests are skipped with a message saying
 * what to install, except under CI, where a missing browser fails them.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const missing = !existsSync(CHROMIUM);
/** The `skip` option of a browser test: a reason outside CI when Chromium is missing, else false. */
export const browserSkip: string | false = missing && !process.env.CI ? `Chromium not found at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)` : false;

/** A fresh headless Chromium (a temporary user-data-dir each time). */
export async function launchBrowser(): Promise<Browser> {
  // Under CI a missing browser is a broken setup, not a reason to skip.
  assert.ok(!missing, `Chromium not found at ${CHROMIUM}: .ci/run installs it (apt-get install -y chromium)`);
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true, timeout: 30_000 });
}
