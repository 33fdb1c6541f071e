import { parsePolicy, type Policy } from '../../protocol/policy.js';
import type { GatewaySpec } from './gateway-spec.js';

/**
 * Deployment policies keyed in lower case (Azure matches deployment names without regard to case,
 * so must the policy), and extended to every backend's own name for a reserved deployment: a
 * caller asking for `gpt-4o-prod` directly must meet the policy of the `gpt-4o` it stands for.
 */
export function deploymentPolicies(spec: GatewaySpec): Map<string, Policy> {
  const policies = new Map<string, Policy>(Object.entries(spec.deployments).map(([deployment, expr]) => [deployment.toLowerCase(), parsePolicy(expr)]));
  for (const backend of spec.backends) {
    for (const [alias, target] of Object.entries(backend.deployments ?? {})) {
      const policy = policies.get(alias.toLowerCase());
      if (policy !== undefined && !policies.has(target.toLowerCase())) policies.set(target.toLowerCase(), policy);
    }
  }
  return policies;
}
