import { z, type z as Zod } from 'zod';
import { type ErrorCode, wicketError } from '../../protocol/errors.js';
import { GATEWAY_CONTENT_ENTRY_BYTES, GATEWAY_CONTENT_TOTAL_BYTES, GATEWAY_LEDGER_RETENTION_DAYS } from '../../protocol/limits.js';
import { parsePolicy } from '../../protocol/policy.js';
import { isRelayName, RELAY_NAME_RULE } from '../../protocol/relay-names.js';

// The `gateway` block of an outlet (node config, or `agent outlet create --gateway azure-openai`):
// what makes the outlet an Azure OpenAI gateway instead of a TCP forwarder. Validated with zod;
// every error names its field the way the rest of node-config does (`outlets[0].gateway.backends[1].url`).
//
//   "gateway": {
//     "kind": "azure-openai",
//     "backends": [
//       { "name": "eastus", "url": "https://aoai-eastus.openai.azure.com", "priority": 0, "weight": 2,
//         "auth": { "kind": "entra" } },
//       { "name": "swedencentral", "url": "https://aoai-sweden.openai.azure.com", "priority": 1,
//         "auth": { "kind": "api-key", "file": "/etc/wicket/sweden.key" } }
//     ],
//     "limits": [
//       { "identity": "I3f5c…", "tokensPerMinute": 20000, "requestsPerMinute": 60 },
//       { "attribute": "team", "value": "cardiology", "tokensPerDay": 2000000 }
//     ],
//     "deployments": { "gpt-4o": "team=research" },
//     "ledger": { "retentionDays": 90 },
//     "sharedCounters": "/var/lib/wicket/limits.db",
//     "contentLog": { "path": "/var/log/wicket/content.jsonl", "redact": ["\\b\\d{3}-\\d{2}-\\d{4}\\b"] }
//   }

const MAX_BACKENDS = 16;
const MAX_LIMIT_RULES = 1_000;
const MAX_PATH_LEN = 4_096;
const MAX_RATE = 1_000_000_000;

/**
 * The schema is built on the first gateway block validated. (zod itself was once loaded here only,
 * to keep its heap out of plain TCP agents; re-measured with the agents' --initial-old-space-size
 * it costs nothing measurable, and node-config.ts now loads it: see agent-startup-modules.test.ts.)
 */
function buildSchema() {
  const path = z.string().min(1).max(MAX_PATH_LEN).refine((p) => !p.includes('\0'), 'must not contain NUL');
  const name = z.string().refine(isRelayName, `must be a name (${RELAY_NAME_RULE})`);
  const rate = z.number().int().min(1).max(MAX_RATE);
  const policyExpression = z.string().superRefine((expr, ctx) => {
    try {
      parsePolicy(expr);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: err instanceof Error ? err.message : String(err) });
    }
  });

  const backendUrl = z.string().max(2_048).superRefine((text, ctx) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${JSON.stringify(text.slice(0, 80))} is not a URL (e.g. https://aoai-eastus.openai.azure.com)` });
      return;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must be https:// (or http:// for a local stand-in)' });
    if (url.username !== '' || url.password !== '') ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must not carry credentials (use auth)' });
    if (url.search !== '' || url.hash !== '') ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must not carry a query or fragment' });
  });

  const backendAuth = z.discriminatedUnion('kind', [
    /** An Entra token for the outlet host's identity (managed identity first, then DefaultAzureCredential's chain). */
    z.object({ kind: z.literal('entra'), clientId: z.string().min(1).max(128).optional() }).strict(),
    /** An api-key read from a mode-0600 file (the key never sits in the config). */
    z.object({ kind: z.literal('api-key'), file: path }).strict(),
    /** No credential (an OpenAI-compatible backend on a trusted network). */
    z.object({ kind: z.literal('none') }).strict(),
  ]);

  const backend = z
    .object({
      name,
      url: backendUrl,
      /** Lower goes first; a higher priority is used only while every lower one is cooling down or failing. */
      priority: z.number().int().min(0).max(100).default(0),
      /** Share of requests among backends of the same priority. */
      weight: z.number().int().min(1).max(1_000).default(1),
      auth: backendAuth.default({ kind: 'entra' }),
      /** PEM CA file for a backend with a private CA (default: system roots). */
      tlsCa: path.optional(),
      /** The caller's deployment name → this backend's (regions often name deployments differently). */
      deployments: z.record(z.string().min(1).max(256), z.string().min(1).max(256)).optional(),
    })
    .strict()
    .superRefine((b, ctx) => {
      // A credential over plain HTTP is readable by anything on the path; only a loopback stand-in may be http://.
      const url = URL.canParse(b.url) ? new URL(b.url) : undefined;
      const loopback = url !== undefined && (url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(url.hostname));
      if (url?.protocol === 'http:' && b.auth.kind !== 'none' && !loopback) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['url'], message: `http:// would send the ${b.auth.kind} credential in clear text; use https:// (plain http is for a loopback stand-in only)` });
      }
    });

  const limitRates = {
    tokensPerMinute: rate.optional(),
    requestsPerMinute: rate.optional(),
    tokensPerDay: rate.optional(),
    tokensPerMonth: rate.optional(),
  };

  const identityRule = z.object({ identity: z.string().regex(/^I[0-9a-f]{64}$/, 'must be an identifier (I followed by 64 hex digits)'), ...limitRates }).strict();
  const attributeRule = z.object({ attribute: z.string().min(1).max(64).regex(/^[^=]+$/, 'must not contain ='), value: z.string().min(1).max(256), ...limitRates }).strict();
  type LimitRuleInput = Zod.input<typeof identityRule> | Zod.input<typeof attributeRule>;
  type LimitRuleOutput = Zod.output<typeof identityRule> | Zod.output<typeof attributeRule>;

  // A rule is checked against the shape it names (an identity, else an attribute), so a mistake is
  // reported at its field: a z.union of both said only `limits[0]: Invalid input` once neither
  // shape parsed (a rate given as a string, an attribute that is not a string).
  const limitRule = z
    .unknown()
    .transform((rule, ctx): LimitRuleOutput => {
      const shape = typeof rule === 'object' && rule !== null && 'identity' in rule ? identityRule : attributeRule;
      const result = shape.safeParse(rule);
      if (!result.success) {
        for (const issue of result.error.issues) ctx.addIssue(issue);
        return z.NEVER;
      }
      const r = result.data;
      if (r.tokensPerMinute === undefined && r.requestsPerMinute === undefined && r.tokensPerDay === undefined && r.tokensPerMonth === undefined) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'sets no limit (tokensPerMinute, requestsPerMinute, tokensPerDay or tokensPerMonth)' });
        return z.NEVER;
      }
      return r;
    }) as unknown as Zod.ZodType<LimitRuleOutput, Zod.ZodTypeDef, LimitRuleInput>;

  const contentLog = z
    .object({
      path,
      /** Regular expressions; every match in a prompt or answer is replaced by [REDACTED] before it is written. */
      redact: z
        .array(
          z.string().max(512).superRefine((pattern, ctx) => {
            try {
              new RegExp(pattern, 'g');
            } catch (err) {
              ctx.addIssue({ code: z.ZodIssueCode.custom, message: `is not a regular expression (${(err as Error).message.slice(0, 80)})` });
            }
          }),
        )
        .max(64)
        .default([]),
      maxEntryBytes: z.number().int().min(256).max(16 * 1024 * 1024).default(GATEWAY_CONTENT_ENTRY_BYTES),
      maxTotalBytes: z.number().int().min(4_096).max(1024 ** 4).default(GATEWAY_CONTENT_TOTAL_BYTES),
    })
    .strict();

  const gatewaySpecSchema = z
    .object({
      kind: z.literal('azure-openai'),
      backends: z.array(backend).min(1).max(MAX_BACKENDS),
      limits: z.array(limitRule).max(MAX_LIMIT_RULES).default([]),
      /** Deployment (or v1 model) name → policy the caller must satisfy to use it; unlisted ones need only the outlet's allow. */
      deployments: z.record(z.string().min(1).max(256), policyExpression).default({}),
      ledger: z.object({ retentionDays: z.number().int().min(1).max(3_660).default(GATEWAY_LEDGER_RETENTION_DAYS) }).strict().default({}),
      /**
       * SQLite file holding the limit counters. Outlets on one host that serve one relay name point
       * at the same file to share budgets; default: limits.db in the agent home.
       */
      sharedCounters: path.optional(),
      contentLog: contentLog.optional(),
    })
    .strict()
    .superRefine((spec, ctx) => {
      const seen = new Set<string>();
      spec.backends.forEach((b, i) => {
        if (seen.has(b.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['backends', i, 'name'], message: `${JSON.stringify(b.name)} is used twice` });
        seen.add(b.name);
      });
    });
    return gatewaySpecSchema;
}

let schema: ReturnType<typeof buildSchema> | undefined;

/** The gateway block's zod schema (built on first use). */
export function gatewaySpecSchema(): ReturnType<typeof buildSchema> {
  schema ??= buildSchema();
  return schema;
}

export type GatewaySpec = Zod.output<ReturnType<typeof buildSchema>>;
export type GatewayInput = Zod.input<ReturnType<typeof buildSchema>>;
export type BackendSpec = GatewaySpec['backends'][number];
export type BackendAuthSpec = BackendSpec['auth'];
export type LimitRuleSpec = GatewaySpec['limits'][number];
export type ContentLogSpec = NonNullable<GatewaySpec['contentLog']>;

/** Validates a gateway block; the first problem is thrown with its field named, e.g. `outlets[0].gateway.backends[1].url`. */
export function validateGatewaySpec(value: unknown, field: string, code: ErrorCode): GatewaySpec {
  const result = gatewaySpecSchema().safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  // An unknown field is named as node-config names one (`….backends[0].tlsCA: unknown field`);
  // zod's own message put it after the parent and quoted every key whole, however long.
  const unknown = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
  const path = unknown === undefined ? issue.path : [...issue.path, unknown];
  const where = path.reduce<string>((at, key) => (typeof key === 'number' ? `${at}[${key}]` : `${at}.${String(key).slice(0, 40)}`), field);
  throw wicketError(code, `${where}: ${unknown === undefined ? issue.message : 'unknown field'}`);
}

/** The limit rule's scope key: `identity:I…` or `attribute:team=cardiology`. */
export function limitScope(rule: LimitRuleSpec): string {
  return 'identity' in rule ? `identity:${rule.identity}` : `attribute:${rule.attribute}=${rule.value}`;
}
