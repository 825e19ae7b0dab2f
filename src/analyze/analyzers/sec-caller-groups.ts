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
import type { AuthzNote } from '../../protocol/authz.js';
import type { Analyzer } from '../analyzer.js';
import { compileAlone, parseFieldPath } from './sec-common.js';

const NOTES: Readonly<Partial<Record<AuthzNote['kind'], MessageName>>> = {
  'caller-identity-shared': 'CallerIdentityShared',
  'caller-group-empty': 'CallerGroupEmpty',
};


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
        ctx.report(name, note.args, { resource: p, field });
      }
    }
  },
};
