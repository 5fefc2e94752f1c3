/**
 * A Mermaid sequenceDiagram of one resource's traffic, from a merged timeline.
 *
 * Participants are actors, named "nN actor/path", in order of first appearance. Each actor
 * message on the resource is an arrow sender ->> receiver; a lock message to another node
 * is one arrow from its sender on the first node to the receiver of the matching dlm-in on
 * the other (the pair counts once). Peer-link frames, and the messages handing them to the
 * PeerLink actors, are left out (the lock messages they carry are shown), and so is inspection. Labels keep to characters Mermaid takes literally.
 */
import type { TraceEvent } from './event';
import { modeText } from './event';
import { isInspection } from './fields';

const SHOWN: ReadonlySet<string> = new Set(['send', 'ask', 'dlm-out', 'dlm-in', 'kernel-out']);

function label(e: TraceEvent): string {
  const parts = [e.sub !== undefined ? `${e.type} ${e.sub}` : e.type];
  const m = modeText(e.mode);
  if (m) parts.push(m);
  if (e.token !== undefined) parts.push(`token ${e.token}`);
  if (e.lock !== undefined) parts.push(e.lock);
  return parts.join(' ').replace(/[^A-Za-z0-9 ./:_()-]/g, ' ');
}

export function toMermaid(timeline: readonly TraceEvent[], resource: string, lockspace?: string): string {
  const evs = timeline.filter((e) => e.res === resource && (lockspace === undefined || e.ls === undefined || e.ls === lockspace)
    && SHOWN.has(e.kind) && !isInspection(e.type, e.sub) && !(e.kind === 'send' && e.to.startsWith('peer-link/')));
  const ins = new Map<string, TraceEvent>();
  for (const e of evs) if (e.kind === 'dlm-in' && e.srcNode !== undefined) ins.set(`${e.srcNode}:${e.srcLc}`, e);
  const paired = new Set<TraceEvent>();
  const ids = new Map<string, string>();
  const used = new Set<string>();
  const lines: string[] = [];
  const participant = (node: number, actor: string): string => {
    const name = `n${node} ${actor}`;
    let id = ids.get(name);
    if (!id) {
      // Two actors whose paths differ only in characters an id cannot have (resource/a-b/r and
      // resource/a_b/r, names in other scripts) get ids of their own, not one shared participant.
      const base = `n${node}_${actor.replace(/[^A-Za-z0-9]/g, '_')}`;
      id = base;
      for (let k = 2; used.has(id); k++) id = `${base}_${k}`;
      used.add(id);
      ids.set(name, id);
      lines.push(`  participant ${id} as ${name.replace(/[^A-Za-z0-9 ./:_-]/g, '_')}`);
    }
    return id;
  };
  const arrows: string[] = [];
  const peerNode = (s: string) => Number(s.slice('node/'.length));
  for (const e of evs) {
    if (paired.has(e)) continue;
    if (e.kind === 'dlm-out') {
      const rcv = ins.get(`${e.node}:${e.lc}`);
      const from = participant(e.node, e.from);
      if (rcv) {
        paired.add(rcv);
        arrows.push(`  ${from}->>${participant(rcv.node, rcv.to)}: ${label(e)}`);
      } else {
        arrows.push(`  ${from}-)${participant(peerNode(e.to), 'router')}: ${label(e)}`);
      }
      continue;
    }
    const from = e.kind === 'dlm-in' ? participant(peerNode(e.from), 'router') : participant(e.node, e.from);
    arrows.push(`  ${from}->>${participant(e.node, e.to)}: ${label(e)}`);
  }
  return ['sequenceDiagram', ...lines, ...arrows].join('\n') + '\n';
}
