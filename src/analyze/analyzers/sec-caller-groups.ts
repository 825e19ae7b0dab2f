/**
 * Caller groups (`source.labels` / `source.notLabels`, a Trellis extension)
 * whose identity is shared with workloads outside the group (TRL1304), or
 * that no workload carries (TRL1305). The compiler decides both while it
 * resolves a group to identities and leaves them as notes in the compiled
 * authorization (`WorkloadAuthz.notes`); this analyzer compiles each policy
 * with `compileAuthz` and reports those notes where they point, so what it
 * says is what the proxies were given.
 */
import type { MessageName } from '../../api/messages.js';
import { messages, render } from '../../api/messages.js';
import type { AuthzNote } from '../../protocol/authz.js';
import type { Analyzer } from '../analyzer.js';
import { compileAlone, labelsText, parseFieldPath } from './sec-common.js';

const NOTES: Readonly<Partial<Record<AuthzNote['kind'], MessageName>>> = {
  'caller-identity-shared': 'CallerIdentityShared',
  'caller-group-empty': 'CallerGroupEmpty',
};

/**
 * The arguments that render `name`'s template as `text` (the compiler's
 * note carries the rendered message only). Undefined when the text is not
 * a rendering of the template.
 */
export function argsOf(name: MessageName, text: string): Record<string, string> | undefined {
  const template = messages[name].template;
  const keys: string[] = [];
  const source = template.split(/\{(\w+)\}/).map((part, i) => {
    if (i % 2 === 1) { keys.push(part); return '([\\s\\S]*)'; }
    return part.replace(/[\\^$.*+?()[\]{}|/-]/g, (c) => `\\${c}`);
  }).join('');
  const m = new RegExp(`^${source}$`).exec(text);
  if (!m) return undefined;
  const args = Object.fromEntries(keys.map((k, i) => [k, m[i + 1]!]));
  return render(template, args) === text ? args : undefined;
}

export const callerGroupsAnalyzer: Analyzer = {
  name: 'authorizationpolicy.caller-groups',
  description: 'AuthorizationPolicy caller groups (source.labels) whose identities other workloads share, or that no workload carries.',
  reads: ['AuthorizationPolicy', 'MeshConfig', 'Pod', 'Deployment', 'WorkloadEntry', 'App', 'ServiceAccount'],
  messages: ['CallerIdentityShared', 'CallerGroupEmpty'],
  run(ctx) {
    for (const p of ctx.ofKind('AuthorizationPolicy')) {
      const group = p.body.spec.rules?.some((r) => r.from?.some((f) => f.source.labels || f.source.notLabels));
      if (!group) continue;
      const seen = new Set<string>();
      for (const note of compileAlone(ctx, p)?.notes ?? []) {
        const name = NOTES[note.kind];
        if (!name || note.resource !== p.ref || seen.has(`${note.kind}|${note.field}`)) continue;
        seen.add(`${note.kind}|${note.field}`);
        const field = parseFieldPath(note.field);
        const args = argsOf(name, note.message) ?? {
          labels: labelsText(labelsAt(p.body, field)), shared: (note.identities ?? []).join(', '), effect: 'see the compiled configuration',
        };
        ctx.report(name, args, { resource: p, field });
      }
    }
  },
};

/** The label map at `field` (a path from the resource's top, `spec…`) of the body. */
function labelsAt(body: unknown, field: readonly (string | number)[]): Readonly<Record<string, string>> | undefined {
  let v: unknown = body;
  for (const k of field) v = v && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined;
  return v && typeof v === 'object' ? (v as Record<string, string>) : undefined;
}
