// What the gateway understands of an app's request: which OpenAI operation it is, for which
// deployment, and its JSON body (to estimate tokens, to ask for streamed usage, to map the
// deployment to a backend's). Anything it does not understand still passes through ('other').
//
//   deployment style  POST /openai/deployments/{d}/chat/completions|completions|embeddings?api-version=…
//   v1 style          POST /openai/v1/chat/completions|completions|embeddings|responses   (deployment = body.model)
//   responses preview POST /openai/responses?api-version=…                                 (deployment = body.model)

import type { GatewayOperation } from './usage-row.js';

export type { GatewayOperation };

export interface OpenAiRoute {
  operation: GatewayOperation;
  /** Where the deployment is named: in the path, in the body's `model`, or nowhere. */
  deploymentIn: 'path' | 'body' | 'none';
  /** The deployment named in the path (deployment style). */
  pathDeployment: string | null;
  /** The path after `/openai/deployments/{d}` (deployment style), to rebuild it for another deployment. */
  pathRest: string;
  /** The request target as the app sent it (path and query). */
  target: string;
}

const DEPLOYMENT_PATH = /^\/openai\/deployments\/([^/?#]+)(\/[^?#]*)$/;
const OPERATIONS: Readonly<Record<string, GatewayOperation>> = {
  '/chat/completions': 'chat',
  '/completions': 'completions',
  '/embeddings': 'embeddings',
  '/responses': 'responses',
};

export function classifyRequest(method: string | undefined, target: string): OpenAiRoute {
  const queryAt = target.indexOf('?');
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  const post = method === 'POST';
  const deployment = DEPLOYMENT_PATH.exec(path);
  if (deployment !== null) {
    let name: string | null;
    try {
      name = decodeURIComponent(deployment[1]!);
    } catch {
      name = null;
    }
    const rest = deployment[2]!;
    const operation = post ? (OPERATIONS[rest] ?? 'other') : 'other';
    return { operation, deploymentIn: name === null ? 'none' : 'path', pathDeployment: name, pathRest: rest, target };
  }
  for (const prefix of ['/openai/v1', '/openai']) {
    if (!path.startsWith(`${prefix}/`)) continue;
    const operation = OPERATIONS[path.slice(prefix.length)];
    // `/openai/responses` is the preview responses API; the other bare /openai/… paths are not operations.
    if (operation !== undefined && post && (prefix === '/openai/v1' || operation === 'responses')) {
      return { operation, deploymentIn: 'body', pathDeployment: null, pathRest: '', target };
    }
  }
  return { operation: 'other', deploymentIn: 'none', pathDeployment: null, pathRest: '', target };
}

export interface PreparedBody {
  /** The parsed JSON object, when the body is one. */
  json: Record<string, unknown> | undefined;
  /** The deployment the caller asked for (path or body.model). */
  deployment: string | null;
  stream: boolean;
  /** We added `stream_options.include_usage`: the usage chunk is ours to count and to hide. */
  usageInjected: boolean;
}

/** Parses the body of an understood operation; a body that is not a JSON object passes as it is. */
export function prepareBody(route: OpenAiRoute, raw: Buffer): PreparedBody {
  let json: Record<string, unknown> | undefined;
  if (route.operation !== 'other' && raw.length > 0) {
    try {
      const value: unknown = JSON.parse(raw.toString('utf8'));
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) json = value as Record<string, unknown>;
    } catch {
      // Not JSON: the backend answers its own 400.
    }
  }
  const model = json !== undefined && typeof json.model === 'string' ? json.model : null;
  const deployment = route.deploymentIn === 'path' ? route.pathDeployment : route.deploymentIn === 'body' ? model : null;
  const stream = json?.stream === true;
  let usageInjected = false;
  if (json !== undefined && stream && (route.operation === 'chat' || route.operation === 'completions')) {
    const options = json.stream_options;
    const asked = typeof options === 'object' && options !== null && (options as { include_usage?: unknown }).include_usage === true;
    if (!asked) {
      json.stream_options = { ...(typeof options === 'object' && options !== null ? options : {}), include_usage: true };
      usageInjected = true;
    }
  }
  return { json, deployment, stream, usageInjected };
}

/**
 * The path and body for one backend: its own name for the deployment (backends in other regions
 * are often named differently), and the body re-serialised only when something in it changed.
 */
export function backendRequest(
  route: OpenAiRoute,
  prepared: PreparedBody,
  raw: Buffer,
  deploymentMap: Readonly<Record<string, string>> | undefined,
): { target: string; body: Buffer } {
  const mapped = prepared.deployment !== null ? deploymentMap?.[prepared.deployment] : undefined;
  let target = route.target;
  if (mapped !== undefined && route.deploymentIn === 'path') {
    const queryAt = route.target.indexOf('?');
    target = `/openai/deployments/${encodeURIComponent(mapped)}${route.pathRest}${queryAt === -1 ? '' : route.target.slice(queryAt)}`;
  }
  const changeModel = mapped !== undefined && route.deploymentIn === 'body';
  if (prepared.json === undefined || (!prepared.usageInjected && !changeModel)) return { target, body: raw };
  const json = changeModel ? { ...prepared.json, model: mapped } : prepared.json;
  return { target, body: Buffer.from(JSON.stringify(json), 'utf8') };
}
