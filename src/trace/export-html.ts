/**
 * A self-contained HTML timeline of a merged trace: one file, no network access when viewed
 * (the events, the style and the drawing code are all inline).
 *
 * Layout: one lane per actor, grouped by node (a band per node); x is the position in the
 * causal order (or, toggled, wall time). Each message is a vertical arrow from the sender's
 * lane to the receiver's, coloured by kind; a lock message between nodes is a diagonal arrow
 * from its dlm-out to its dlm-in. A filter box narrows the events; clicking one shows its
 * fields. Up to `maxEvents` (the newest) are drawn; the header says how many were left out.
 */
import type { TraceEvent } from './event';

export interface HtmlOptions { title?: string; maxEvents?: number; generatedAt?: Date }

/** Colours by message family: the screenshot test looks for some of them. */
export const HTML_COLOURS = {
  lane: '#f3f5f8', laneAlt: '#e8ecf2', nodeBand: '#2f4b7c',
  request: '#1f77b4', grant: '#2ca02c', bast: '#d62728', release: '#9467bd', dlm: '#ff7f0e', frame: '#9aa5b1', other: '#555555',
} as const;

const escapeScript = (s: string) => s.replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]!));

export function toHtml(timeline: readonly TraceEvent[], o: HtmlOptions = {}): string {
  const max = o.maxEvents ?? 5000;
  const shown = timeline.length > max ? timeline.slice(timeline.length - max) : timeline;
  const title = o.title ?? 'MXFS trace';
  const data = { title, generatedAt: (o.generatedAt ?? new Date()).toISOString(), total: timeline.length, events: shown, colours: HTML_COLOURS };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body{font:13px/1.4 system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:0;color:#222;background:#fff}
header{padding:8px 12px;background:${HTML_COLOURS.nodeBand};color:#fff;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header h1{font-size:15px;margin:0}
#filter{font:inherit;padding:2px 6px;width:260px}
header label{cursor:pointer}
#wrap{display:flex;height:calc(100vh - 44px)}
#names{flex:none;width:220px;overflow:hidden;border-right:1px solid #ccc;background:#fafbfc}
#scroll{flex:1;overflow:auto}
#detail{flex:none;width:300px;overflow:auto;border-left:1px solid #ccc;padding:8px;font-family:monospace;font-size:12px;white-space:pre-wrap}
.legend span{display:inline-block;padding:0 6px;margin-right:4px;border-radius:3px;color:#fff}
svg text{font-size:11px;font-family:inherit}
.msg{cursor:pointer}
.msg:hover line,.msg:hover path{stroke-width:3}
</style></head>
<body>
<header><h1 id="title"></h1><span id="summary"></span>
<input id="filter" placeholder="filter: type, actor, resource, lock..." aria-label="filter">
<label><input type="checkbox" id="bytime"> wall-time axis</label>
<span class="legend" id="legend"></span></header>
<div id="wrap"><div id="names"><svg id="lanesvg" width="220"></svg></div><div id="scroll"><svg id="timeline" class="timeline"></svg></div><div id="detail">Click a message to see its fields.</div></div>
<script type="application/json" id="trace-data">${escapeScript(JSON.stringify(data))}</script>
<script>
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('trace-data').textContent);
  var C = D.colours, NS = 'http://www.w3.org/2000/svg', LANE = 22, STEP = 16, LEFT = 10;
  var MODES = ['NL','CR','CW','PR','PW','EX'];
  document.getElementById('title').textContent = D.title;
  var legend = [['request', 'request/convert'], ['grant', 'granted'], ['bast', 'BAST'], ['release', 'unlock/released'], ['dlm', 'between nodes'], ['frame', 'peer frames'], ['other', 'other']];
  legend.forEach(function (l) { var s = document.createElement('span'); s.style.background = C[l[0]]; s.textContent = l[1]; document.getElementById('legend').appendChild(s); });
  function family(e) {
    var t = e.type + ' ' + (e.sub || '');
    if (e.kind === 'frame-out' || e.kind === 'frame-in') return 'frame';
    if (e.kind === 'dlm-out' || e.kind === 'dlm-in') return /bast/.test(t) ? 'bast' : 'dlm';
    if (/bast/.test(t)) return 'bast';
    if (/granted/.test(t)) return 'grant';
    if (/unlock|released|purge/.test(t)) return 'release';
    if (/request|convert|lock/.test(t)) return 'request';
    return 'other';
  }
  function label(e) {
    var s = e.sub ? e.type + '/' + e.sub : e.type;
    if (e.res !== undefined) s += ' ' + e.res;
    if (e.mode !== undefined) s += ' ' + (MODES[e.mode] || e.mode);
    if (e.token !== undefined) s += ' token ' + e.token;
    return s;
  }
  function el(tag, attrs, parent) { var x = document.createElementNS(NS, tag); for (var k in attrs) x.setAttribute(k, attrs[k]); if (parent) parent.appendChild(x); return x; }
  function draw() {
    var q = document.getElementById('filter').value.trim().toLowerCase();
    var byTime = document.getElementById('bytime').checked;
    var evs = D.events.filter(function (e) { return !q || JSON.stringify(e).toLowerCase().indexOf(q) >= 0; });
    document.getElementById('summary').textContent = evs.length + ' of ' + D.total + ' events' + (D.total > D.events.length ? ' (newest ' + D.events.length + ' kept)' : '') + ', generated ' + D.generatedAt;
    // Lanes: by node, then first appearance; a lock message's far end shows on the other node's router lane.
    var lanes = [], index = {};
    function lane(node, actor) { var k = node + '|' + actor; if (!(k in index)) { index[k] = lanes.length; lanes.push({ node: node, actor: actor }); } return index[k]; }
    evs.forEach(function (e) { lane(e.node, e.from); lane(e.node, e.to); });
    var order = lanes.map(function (l, i) { return i; }).sort(function (a, b) { return lanes[a].node - lanes[b].node || a - b; });
    var y = {}; order.forEach(function (li, pos) { y[li] = pos * LANE + LANE / 2 + 4; });
    var t0 = evs.length ? Math.min.apply(null, evs.map(function (e) { return e.wall; })) : 0;
    var t1 = evs.length ? Math.max.apply(null, evs.map(function (e) { return e.wall; })) : 1;
    var width = byTime ? Math.max(800, 1600) : LEFT * 2 + evs.length * STEP;
    function x(e, i) { return byTime ? LEFT + (e.wall - t0) / Math.max(1, t1 - t0) * (width - 2 * LEFT) : LEFT + i * STEP; }
    var h = lanes.length * LANE + 8;
    var svg = document.getElementById('timeline'), names = document.getElementById('lanesvg');
    svg.innerHTML = ''; names.innerHTML = '';
    svg.setAttribute('width', width); svg.setAttribute('height', h);
    names.setAttribute('height', h);
    var prevNode = null;
    order.forEach(function (li, pos) {
      var l = lanes[li], top = pos * LANE + 4;
      el('rect', { x: 0, y: top, width: width, height: LANE, fill: pos % 2 ? C.laneAlt : C.lane, 'class': 'lane' }, svg);
      if (l.node !== prevNode) {
        el('rect', { x: 0, y: top, width: 6, height: LANE, fill: C.nodeBand }, names);
        if (prevNode !== null) { el('line', { x1: 0, y1: top, x2: width, y2: top, stroke: C.nodeBand, 'stroke-width': 1 }, svg); el('line', { x1: 0, y1: top, x2: 220, y2: top, stroke: C.nodeBand }, names); }
        prevNode = l.node;
      }
      var t = el('text', { x: 10, y: top + 15 }, names); t.textContent = 'n' + l.node + '  ' + l.actor;
    });
    var pos = {};
    evs.forEach(function (e, i) { pos[e.node + ':' + e.seq] = x(e, i); });
    var outs = {};
    evs.forEach(function (e, i) { if (e.kind === 'dlm-out') outs[e.node + ':' + e.lc] = { e: e, x: x(e, i) }; });
    evs.forEach(function (e, i) {
      var g = el('g', { 'class': 'msg' }, svg), col = C[family(e)], xi = x(e, i);
      var ya = y[index[e.node + '|' + e.from]], yb = y[index[e.node + '|' + e.to]];
      el('line', { x1: xi, y1: ya, x2: xi, y2: yb, stroke: col, 'stroke-width': 2 }, g);
      el('circle', { cx: xi, cy: yb, r: 4, fill: col }, g);
      el('circle', { cx: xi, cy: ya, r: 2, fill: col }, g);
      if (e.kind === 'dlm-in' && e.srcNode !== undefined) {
        var o = outs[e.srcNode + ':' + e.srcLc];
        if (o) el('path', { d: 'M' + o.x + ' ' + y[index[o.e.node + '|' + o.e.to]] + ' L' + xi + ' ' + ya, stroke: C.dlm, 'stroke-width': 2, fill: 'none', 'stroke-dasharray': '5 3', 'class': 'flow' }, g);
      }
      var tt = el('title', {}, g); tt.textContent = 'n' + e.node + ' ' + e.from + ' -> ' + e.to + '\\n' + label(e);
      g.addEventListener('click', function () { document.getElementById('detail').textContent = JSON.stringify(e, null, 2); });
    });
  }
  document.getElementById('filter').addEventListener('input', draw);
  document.getElementById('bytime').addEventListener('change', draw);
  var sc = document.getElementById('scroll');
  sc.addEventListener('scroll', function () { document.getElementById('names').scrollTop = sc.scrollTop; });
  draw();
})();
</script></body></html>
`;
}
