// Which Azure OpenAI data-plane routes the stand-in serves, and which `api-version` each accepts.
// Three URL styles exist side by side on a real resource:
//
//   /openai/deployments/{d}/{operation}?api-version=DATED   the deployment in the path; a dated
//                                                           version is required (none → 404)
//   /openai/responses?api-version=2025-03-01-preview        the Responses API before v1: the
//                                                           deployment is the body's `model`, and
//                                                           only previews from 2025-03-01 on
//   /openai/v1/{operation}                                  the v1 API (GA August 2025): the
//                                                           deployment is the body's `model`;
//                                                           api-version absent, `preview` or
//                                                           `latest`
//
// Anything else is 404 `Resource not found`, as Azure answers an unknown path.

import * as azure from './azure-errors.js';

export type Operation = 'chat' | 'completions' | 'embeddings' | 'responses';

/** Azure's GA and preview data-plane versions for the dated routes; others get 400. */
export const SUPPORTED_API_VERSIONS: ReadonlySet<string> = new Set([
  '2022-12-01', '2023-05-15', '2024-02-01', '2024-06-01', '2024-10-21',
  '2023-03-15-preview', '2023-06-01-preview', '2023-07-01-preview', '2023-08-01-preview',
  '2023-09-01-preview', '2023-12-01-preview', '2024-02-15-preview', '2024-03-01-preview',
  '2024-04-01-preview', '2024-05-01-preview', '2024-07-01-preview', '2024-08-01-preview',
  '2024-09-01-preview', '2024-10-01-preview', '2024-12-01-preview', '2025-01-01-preview',
  '2025-02-01-preview', '2025-03-01-preview', '2025-04-01-preview',
]);

/** What the v1 API takes as `api-version`, besides none at all. */
export const V1_API_VERSIONS: ReadonlySet<string> = new Set(['preview', 'latest']);

const FIRST_RESPONSES_PREVIEW = '2025-03-01';

export type RouteStyle = 'deployment' | 'responses-dated' | 'v1';

export interface Route {
  readonly operation: Operation;
  readonly style: RouteStyle;
  /** Still URL-encoded; present only for the deployment style (the others name it in the body). */
  readonly encodedDeployment?: string;
}

const DEPLOYMENT_ROUTE = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|completions|embeddings)$/;
const V1_ROUTE = /^\/openai\/v1\/(chat\/completions|completions|embeddings|responses)$/;

const OPERATION_OF_PATH: Readonly<Record<string, Operation>> = {
  'chat/completions': 'chat',
  completions: 'completions',
  embeddings: 'embeddings',
  responses: 'responses',
};

export function matchRoute(method: string | undefined, pathname: string): Route | undefined {
  if (method !== 'POST') return undefined;
  const deployment = DEPLOYMENT_ROUTE.exec(pathname);
  if (deployment) {
    const operation = OPERATION_OF_PATH[deployment[2] ?? ''];
    return operation && { operation, style: 'deployment', encodedDeployment: deployment[1] ?? '' };
  }
  if (pathname === '/openai/responses') return { operation: 'responses', style: 'responses-dated' };
  const v1 = V1_ROUTE.exec(pathname);
  const operation = v1 ? OPERATION_OF_PATH[v1[1] ?? ''] : undefined;
  return operation && { operation, style: 'v1' };
}

/**
 * Checks the `api-version` query parameter for the route; returns the version to quote in
 * messages (`v1` when the v1 API was called without one), or the answer Azure gives.
 */
export function checkApiVersion(route: Route, apiVersion: string | null): { version: string } | { error: azure.AzureErrorAnswer } {
  if (route.style === 'v1') {
    if (apiVersion === null) return { version: 'v1' };
    return V1_API_VERSIONS.has(apiVersion) ? { version: apiVersion } : { error: azure.apiVersionNotSupported() };
  }
  if (!apiVersion) return { error: azure.resourceNotFound() };
  if (!SUPPORTED_API_VERSIONS.has(apiVersion)) return { error: azure.apiVersionNotSupported() };
  if (route.style === 'responses-dated' && !(apiVersion.endsWith('-preview') && apiVersion.slice(0, 10) >= FIRST_RESPONSES_PREVIEW)) {
    return { error: azure.responsesNeedNewerApiVersion() };
  }
  return { version: apiVersion };
}
