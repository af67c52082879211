/** The benchmark chart (bench/chart.ts): well-formed SVG, one bar per figure, ratios to Nchan, lower-is-better marked. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { renderChart } from '../../bench/chart.js';

describe('bench chart', () => {
  const series = [
    { name: 'nchan', label: 'Nchan' },
    { name: 'node-http', label: 'push-relay <relay.handler> & co' },
    { name: 'better-sse', label: 'better-sse' },
  ];
  const svg = renderChart('a run', series, [
    { title: '(a) fan-out, deliveries/s', lowerIsBetter: false, values: new Map([['nchan', 1000], ['node-http', 500], ['better-sse', undefined]]), format: (v) => `${v}` },
    { title: '(c) p99 ms', lowerIsBetter: true, values: new Map([['nchan', 10], ['node-http', 25], ['better-sse', 40]]), format: (v) => `${v} ms` },
    { title: '(x) nothing ran', lowerIsBetter: false, values: new Map(), format: String },
  ]);

  it('is well-formed SVG with every label escaped', () => {
    const doc = new XMLParser({ ignoreAttributes: false }).parse(svg) as { svg: { rect: unknown[]; text: unknown[] } };
    assert.ok(doc.svg, 'an <svg> root');
    assert.ok(svg.includes('push-relay &#60;relay.handler&#62; &#38; co'));
  });

  it('draws one bar per figure, labels ratios to Nchan, marks lower-is-better panels, skips empty ones', () => {
    // 1 background + 2 bars in (a) + 3 in (c).
    assert.equal(svg.match(/<rect /g)?.length, 6);
    assert.match(svg, /500 \(0\.50x Nchan\)/);
    assert.match(svg, /25 ms \(2\.50x Nchan\)/);
    assert.match(svg, /\(c\) p99 ms \(lower is better\)/);
    assert.match(svg, /\(a\) fan-out, deliveries\/s \(higher is better\)/);
    assert.doesNotMatch(svg, /nothing ran/);
    // Bars scale within their panel: the largest is the full width.
    assert.match(svg, /width="470" height="16"/);
  });
});
