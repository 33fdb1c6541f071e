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
  /** The request target as the backend gets it: the app's, in canonical form (see canonicalTarget). */
  target: string;
}

// Case-insensitive, and a trailing slash ignored: Azure's routing matches paths that way, so a
// request for /OpenAI/Deployments/d/Chat/Completions/ must not pass as 'other' (no estimate, no
// streamed usage: tokens the limits never see).
const DEPLOYMENT_PATH = /^\/openai\/deployments\/([^/?#]+)(\/[^?#]*)$/i;
const OPERATIONS: Readonly<Record<string, GatewayOperation>> = {
  '/chat/completions': 'chat',
  '/completions': 'completions',
  '/embeddings': 'embeddings',
  '/responses': 'responses',
};

/**
 * The target in the one form the gateway both classifies and sends on. Without it a backend that
 * resolves dot segments (`/openai/deployments/free/../gpt-4o/chat/completions`, `%2e%2e` too),
 * merges slashes or takes an absolute-form target (`POST http://x/openai/deployments/gpt-4o/…`,
 * which node:http and undici both pass as it is) served another deployment or operation than the
 * one whose policy and limits were checked. A target that is not a path at all (`OPTIONS *`) made
 * undici throw, which counted against the backend's breaker.
 */
export function canonicalTarget(target: string): string {
  let url: URL | undefined;
  if (/^https?:\/\//i.test(target)) {
    try {
      url = new URL(target);
    } catch {
      url = undefined;
    }
  }
  // After a fixed origin everything is path, query or fragment: nothing can name another host.
  url ??= new URL(`http://gateway.invalid/${target.replace(/^[/\\]+/, '')}`);
  // Percent-escapes of unreserved characters mean the character itself (RFC 3986 §6.2.2.2) and
  // some servers decode them before routing: `%63hat/completions` must classify as chat.
  const path = url.pathname.replace(/%(2[dD]|2[eE]|5[fF]|7[eE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA])/g, (escape) => String.fromCharCode(parseInt(escape.slice(1), 16)));
  return path.replace(/\/{2,}/g, '/') + url.search;
}

function operationOf(rest: string): GatewayOperation | undefined {
  const key = rest.toLowerCase().replace(/(.)\/$/, '$1');
  return Object.hasOwn(OPERATIONS, key) ? OPERATIONS[key] : undefined;
}

export function classifyRequest(method: string | undefined, appTarget: string): OpenAiRoute {
  const target = canonicalTarget(appTarget);
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
    const operation = post ? (operationOf(rest) ?? 'other') : 'other';
    return { operation, deploymentIn: name === null ? 'none' : 'path', pathDeployment: name, pathRest: rest, target };
  }
  const lower = path.toLowerCase();
  for (const prefix of ['/openai/v1', '/openai']) {
    if (!lower.startsWith(`${prefix}/`)) continue;
    const operation = operationOf(lower.slice(prefix.length));
    // `/openai/responses` is the preview responses API; the other bare /openai/… paths are not operations.
    if (operation !== undefined && post && (prefix === '/openai/v1' || operation === 'responses')) {
      return { operation, deploymentIn: 'body', pathDeployment: null, pathRest: '', target };
    }
    // Any other v1 operation (images, audio, …) names its deployment in body.model too: its policy
    // applies (it used to pass unchecked as 'other').
    if (prefix === '/openai/v1') return { operation: 'other', deploymentIn: 'body', pathDeployment: null, pathRest: '', target };
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
  if ((route.operation !== 'other' || route.deploymentIn === 'body') && raw.length > 0) {
    try {
      // A leading BOM is skipped as the backend's JSON reader skips it: refused here, the request
      // passed uncounted (and a v1 model unchecked) while the backend served it.
      const value: unknown = JSON.parse(raw.toString('utf8').replace(/^\uFEFF/, ''));
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) json = value as Record<string, unknown>;
    } catch {
      // Not JSON: the backend answers its own 400.
    }
  }
  const model = json !== undefined && typeof json.model === 'string' ? json.model : null;
  const deployment = route.deploymentIn === 'path' ? route.pathDeployment : route.deploymentIn === 'body' ? model : null;
  const stream = json?.stream === true;
  let usageInjected = false;
  if (json !== undefined && stream && (route.operation === 'chat' || route.operation === 'completions') && streamUsageSupported(route)) {
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
 * Azure refuses `stream_options` ("Unrecognized request argument") before api-version
 * 2024-09-01-preview; the v1 API (no api-version, or preview/latest) takes it. On older versions the
 * gateway does not ask: such a stream's tokens are charged at the estimate and its ledger row has
 * no counts.
 */
function streamUsageSupported(route: OpenAiRoute): boolean {
  const queryAt = route.target.indexOf('?');
  const version = queryAt === -1 ? null : new URLSearchParams(route.target.slice(queryAt + 1)).get('api-version');
  if (version === null || version === 'preview' || version === 'latest') return true;
  const date = /^(\d{4}-\d{2}-\d{2})/.exec(version)?.[1];
  return date !== undefined && date >= '2024-09-01';
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
  const mapped = prepared.deployment === null ? undefined : mappedDeployment(deploymentMap, prepared.deployment);
  let target = route.target;
  if (mapped !== undefined && route.deploymentIn === 'path') {
    const queryAt = route.target.indexOf('?');
    target = `/openai/deployments/${encodeURIComponent(mapped)}${route.pathRest}${queryAt === -1 ? '' : route.target.slice(queryAt)}`;
  }
  const changeModel = mapped !== undefined && route.deploymentIn === 'body';
  // A body that names its deployment is always sent as the gateway read it: raw JSON with two
  // "model" keys could otherwise be routed by a backend that takes the first, not the one checked.
  const reserialise = prepared.usageInjected || route.deploymentIn === 'body';
  if (prepared.json === undefined || (!reserialise && !changeModel)) return { target, body: raw };
  const json = changeModel ? { ...prepared.json, model: mapped } : prepared.json;
  return { target, body: Buffer.from(JSON.stringify(json), 'utf8') };
}

/**
 * The backend's name for a deployment: matched without regard to case (as Azure matches deployment
 * names, and as the gateway's policies are), own keys only (a caller's "constructor" or
 * "__proto__" must not find Object's).
 */
export function mappedDeployment(map: Readonly<Record<string, string>> | undefined, deployment: string): string | undefined {
  if (map === undefined) return undefined;
  if (Object.hasOwn(map, deployment)) return map[deployment];
  const wanted = deployment.toLowerCase();
  for (const [name, target] of Object.entries(map)) if (name.toLowerCase() === wanted) return target;
  return undefined;
}
