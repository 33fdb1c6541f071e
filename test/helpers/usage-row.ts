import type { UsageRow } from '../../agent/gateway/usage-row.js';
import { identifierFor } from './identifier.js';

/**
 * A usage ledger row: by default one plain (not streamed) chat request from identifierFor(1),
 * answered 200 by backend eastus. A test sets `at` and whatever else its case is about.
 */
export function usageRow(overrides: Partial<UsageRow> & Pick<UsageRow, 'at'>): UsageRow {
  return {
    outlet: 'openai',
    identity: identifierFor(1),
    attributes: {},
    deployment: 'gpt-4o',
    model: 'gpt-4o-2024-08-06',
    operation: 'chat',
    stream: false,
    status: 200,
    code: null,
    promptTokens: 10,
    completionTokens: 10,
    totalTokens: 20,
    latencyMs: 100,
    ttftMs: null,
    backend: 'eastus',
    requestId: null,
    ...overrides,
  };
}
