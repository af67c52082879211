/**
 * The benchmark's picture: one panel per scenario, one bar per server (Nchan, push-relay on each
 * path, the floors, the Node peers), each labelled with its figure and its ratio to Nchan, as plain
 * SVG text (no browser, no dependency). Bars are scaled within their panel; a lower-is-better
 * scenario says so in its title, and its ratio reads the same way as the table's.
 */

export interface ChartSeries {
  name: string;
  label: string;
}

export interface ChartPanel {
  title: string;
  lowerIsBetter: boolean;
  /** The figure of each series (by name), undefined where it did not run. */
  values: ReadonlyMap<string, number | undefined>;
  format(value: number): string;
}

const WIDTH = 980;
const LABEL_WIDTH = 330;
const BAR_AREA = 470;
const BAR = 16;
const GAP = 5;
const PANEL_HEAD = 30;
const PANEL_GAP = 18;

/** What family a server belongs to, for its colour. */
function colour(name: string): string {
  if (name.startsWith('nchan')) return name === 'nchan' ? '#5b5b5b' : '#8c8c8c';
  if (name.endsWith('-minimal')) return '#7fb77e';
  if (name.includes('redis')) return '#8fb3de';
  if (name === 'express' || name === 'node-http') return '#2f6db5';
  return '#e0a040';
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function renderChart(heading: string, series: readonly ChartSeries[], panels: readonly ChartPanel[]): string {
  let y = 48;
  const parts: string[] = [];
  for (const panel of panels) {
    const shown = series.filter((s) => panel.values.get(s.name) !== undefined);
    if (shown.length === 0) continue;
    const max = Math.max(...shown.map((s) => panel.values.get(s.name)!));
    const nchan = panel.values.get('nchan');
    // push-relay on Redis is set beside Nchan's Redis mode when it ran.
    const nchanRedis = panel.values.get('nchan-redis');
    parts.push(`<text x="12" y="${y + 18}" class="panel">${escapeXml(panel.title)}${panel.lowerIsBetter ? ' (lower is better)' : ' (higher is better)'}</text>`);
    y += PANEL_HEAD;
    for (const s of shown) {
      const value = panel.values.get(s.name)!;
      const width = max > 0 ? Math.max(1, Math.round((value / max) * BAR_AREA)) : 1;
      const redisPeer = s.name.includes('redis') && s.name !== 'nchan-redis' && nchanRedis !== undefined && nchanRedis > 0;
      const reference = redisPeer ? nchanRedis : nchan;
      const ratio = reference !== undefined && reference > 0 && s.name !== 'nchan' ? ` (${(value / reference).toFixed(2)}x Nchan${redisPeer ? ' on Redis' : ''})` : '';
      parts.push(
        `<text x="${LABEL_WIDTH - 8}" y="${y + BAR - 4}" class="label" text-anchor="end">${escapeXml(s.label)}</text>`,
        `<rect x="${LABEL_WIDTH}" y="${y}" width="${width}" height="${BAR}" fill="${colour(s.name)}"/>`,
        `<text x="${LABEL_WIDTH + width + 6}" y="${y + BAR - 4}" class="value">${escapeXml(panel.format(value) + ratio)}</text>`,
      );
      y += BAR + GAP;
    }
    y += PANEL_GAP;
  }
  const height = y + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">
<style>.title{font-size:16px;font-weight:bold}.panel{font-size:13px;font-weight:bold}.label{font-size:11px}.value{font-size:11px;fill:#333}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="12" y="26" class="title">${escapeXml(heading)}</text>
${parts.join('\n')}
</svg>
`;
}
