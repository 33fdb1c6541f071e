import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { type ErrorCode, isWicketError, wicketError } from '../protocol/errors.js';
import {
  MAX_NODE_RESOURCES,
  MAX_TARGET_CONNECTIONS_SETTING,
  NODE_CONFIG_MAX_BYTES,
  OUTLET_MAX_TARGET_CONNECTIONS,
  OUTLET_MAX_TARGET_CONNECTIONS_PER_PEER,
} from '../protocol/limits.js';
import { isRelayName, RELAY_NAME_RULE } from '../protocol/relay-names.js';
import { parsePolicy } from '../protocol/policy.js';
import { formatOfPath, parseConfigText, positionOf } from './config-file-text.js';
import { type GatewaySpec, gatewaySpecSchema } from './gateway/gateway-spec.js';

// The shapes of a node's resources and their strict validation (zod schemas). One schema serves
// three doors: the node config file (WICKET_ERR_CONFIG), the CLI's arguments and the control
// socket (WICKET_ERR_ARGUMENT), so a resource that reaches the node has the same guarantees
// whichever way it came in.
//
//   node.yaml / node.json = { metrics?: "HOST:PORT", outletRelays?: 1 | 2,
//                             outlets: [{ name?, to, tls?, tlsCa?, tlsServername?, relay, allow,
//                                         maxConnections?, maxConnectionsPerPeer? }
//                                       | { name?, relay, allow, gateway, maxConnections?, … }],
//                             inlets:  [{ name?, from, via, allow }] }
//
// Unknown fields are refused (a misspelt "tlsCA" must not silently turn certificate checks into
// system roots), and every error names the field, e.g. `outlets[0].to`, and in a file, the file.

export interface HostPort {
  host: string;
  port: number;
}

export interface OutletSpec {
  /** Resource name (defaults to the relay name). */
  name: string;
  /** The fixed target: the inlet never chooses a destination. Absent for a gateway (its backends are the targets). */
  to?: HostPort;
  /** Gateway mode: HTTP parsed from each stream and sent to the gateway's backend pool (agent/gateway). */
  gateway?: GatewaySpec;
  tls: boolean;
  /** PEM file with the CA(s) that sign the target's certificate; system roots when absent. */
  tlsCa?: string;
  /** Name checked against the target's certificate; defaults to `to.host`. */
  tlsServername?: string;
  /** The relay name this outlet registers. */
  relay: string;
  /** Policy over the inlet's identity and attributes. */
  allow: string;
  /** Target connections held at once, in all (default OUTLET_MAX_TARGET_CONNECTIONS). */
  maxConnections: number;
  /** Target connections one peer identity may hold at once (default OUTLET_MAX_TARGET_CONNECTIONS_PER_PEER). */
  maxConnectionsPerPeer: number;
}

export interface InletSpec {
  name: string;
  /** Where to listen; port 0 picks a free port. */
  from: HostPort;
  /** The relay name of the outlet to reach. */
  via: string;
  /** Policy over the outlet's identity and attributes. */
  allow: string;
}

export interface NodeConfig {
  outlets: OutletSpec[];
  inlets: InletSpec[];
  /** Where to serve Prometheus metrics and the health endpoints (`--metrics` wins over it). */
  metrics?: HostPort;
  /** 2: the outlets are registered on two relays at once (agent/standby-relay.ts); default 1. */
  outletRelays?: 1 | 2;
}

const HOSTNAME_PATTERN = /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;
const MAX_PATH_LEN = 4_096;

function fail(code: ErrorCode, field: string, problem: string): never {
  throw wicketError(code, `${field}: ${problem}`);
}

function shown(value: unknown): string {
  return JSON.stringify(typeof value === 'string' ? value.slice(0, 80) : value)?.slice(0, 80) ?? String(value);
}

// --- the semantic checks, each a problem text or nothing; the schemas and the CLI share them ----

function nameProblem(value: string): string | undefined {
  return isRelayName(value) ? undefined : `${shown(value)} is not a name (${RELAY_NAME_RULE})`;
}

/** `HOST:PORT`, `[IPv6]:PORT`; hosts are an IP literal or a DNS name, nothing else reaches net.connect or net.listen. */
function hostPortOrProblem(value: string, allowPortZero: boolean): HostPort | string {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (match === null) return `${shown(value)} is not HOST:PORT (e.g. 127.0.0.1:8443 or [::1]:8443)`;
  const host = (match[1] ?? match[2])!;
  const bracketed = match[1] !== undefined;
  if (bracketed ? isIP(host) !== 6 : !(isIP(host) === 4 || HOSTNAME_PATTERN.test(host))) return `${shown(host)} is not an IP address or host name`;
  const port = Number(match[3]);
  if (port > 65_535 || (port === 0 && !allowPortZero)) return `port ${port} is out of range`;
  return { host, port };
}

function policyProblem(value: string): string | undefined {
  try {
    parsePolicy(value);
    return undefined;
  } catch (err) {
    // Keep the parser's own code (WICKET_ERR_POLICY_SYNTAX) in the message: it says what is wrong.
    return err instanceof Error ? err.message : String(err);
  }
}

/** A relay or resource name (resources follow the relay-name rule, as they default to it). */
export function parseName(value: unknown, field: string, code: ErrorCode = 'WICKET_ERR_ARGUMENT'): string {
  if (typeof value !== 'string') fail(code, field, 'must be a string');
  const problem = nameProblem(value);
  if (problem !== undefined) fail(code, field, problem);
  return value;
}

/** `HOST:PORT`, `[IPv6]:PORT`. `allowPortZero` for listen addresses (port 0 = any free port). */
export function parseHostPort(value: unknown, field: string, options: { code?: ErrorCode; allowPortZero?: boolean } = {}): HostPort {
  const code = options.code ?? 'WICKET_ERR_ARGUMENT';
  if (typeof value !== 'string') fail(code, field, 'must be a string HOST:PORT');
  const parsed = hostPortOrProblem(value, options.allowPortZero === true);
  if (typeof parsed === 'string') fail(code, field, parsed);
  return parsed;
}

export function formatHostPort(address: HostPort): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

export function checkPolicy(value: unknown, field: string, code: ErrorCode = 'WICKET_ERR_ARGUMENT'): string {
  if (typeof value !== 'string') fail(code, field, 'must be a policy expression string');
  const problem = policyProblem(value);
  if (problem !== undefined) fail(code, field, problem);
  return value;
}

// --- the schemas ------------------------------------------------------------------------------

function custom(ctx: z.RefinementCtx, message: string, path?: (string | number)[]): void {
  ctx.addIssue({ code: z.ZodIssueCode.custom, message, ...(path !== undefined ? { path } : {}) });
}

const nameSchema = z.string({ required_error: 'is required', invalid_type_error: 'must be a string' }).superRefine((value, ctx) => {
  const problem = nameProblem(value);
  if (problem !== undefined) custom(ctx, problem);
});

function hostPortSchema(allowPortZero: boolean) {
  return z.string({ required_error: 'is required (HOST:PORT)', invalid_type_error: 'must be a string HOST:PORT' }).transform((value, ctx): HostPort => {
    const parsed = hostPortOrProblem(value, allowPortZero);
    if (typeof parsed !== 'string') return parsed;
    custom(ctx, parsed);
    return z.NEVER;
  });
}

const policySchema = z.string({ required_error: 'is required (a policy expression)', invalid_type_error: 'must be a policy expression string' }).superRefine((value, ctx) => {
  const problem = policyProblem(value);
  if (problem !== undefined) custom(ctx, problem);
});

function boundedString(max: number) {
  const message = `must be a non-empty string of at most ${max} characters`;
  return z.string({ invalid_type_error: message }).min(1, message).max(max, message).refine((text) => !text.includes('\0'), message);
}

/** A connection limit: a whole number from 1 to MAX_TARGET_CONNECTIONS_SETTING. */
const countMessage = `must be a whole number from 1 to ${MAX_TARGET_CONNECTIONS_SETTING}`;
const countSchema = z.number({ invalid_type_error: countMessage }).int(countMessage).min(1, countMessage).max(MAX_TARGET_CONNECTIONS_SETTING, countMessage);

const OUTLET_FIELDS = ['name', 'to', 'tls', 'tlsCa', 'tlsServername', 'relay', 'allow', 'gateway', 'maxConnections', 'maxConnectionsPerPeer'] as const;
const INLET_FIELDS = ['name', 'from', 'via', 'allow'] as const;
const ROOT_FIELDS = ['metrics', 'outletRelays', 'outlets', 'inlets'] as const;
const unknownField = (fields: readonly string[]): string => `unknown field (expected one of ${fields.join(', ')})`;

const outletSchema = z
  .object(
    {
      name: nameSchema.optional(),
      to: hostPortSchema(false).optional(),
      tls: z.boolean({ invalid_type_error: 'must be true or false' }).optional(),
      tlsCa: boundedString(MAX_PATH_LEN).optional(),
      tlsServername: boundedString(253)
        .refine((name) => HOSTNAME_PATTERN.test(name), (name) => ({ message: `${shown(name)} is not a host name` }))
        .optional(),
      relay: nameSchema,
      allow: policySchema,
      // Built on the first gateway block, as gateway-spec.ts has always done.
      gateway: z.lazy(() => gatewaySpecSchema()).optional(),
      maxConnections: countSchema.optional(),
      maxConnectionsPerPeer: countSchema.optional(),
    },
    { invalid_type_error: 'must be an object' },
  )
  .strict(unknownField(OUTLET_FIELDS))
  .superRefine((o, ctx) => {
    if (o.gateway !== undefined) {
      // The field named is the one given (it was always `.to`, even for a stray `tls`).
      const given = (['to', 'tls', 'tlsCa', 'tlsServername'] as const).find((key) => o[key] !== undefined);
      if (given !== undefined) custom(ctx, 'a gateway outlet has no to/tls/tlsCa/tlsServername: its gateway.backends are the targets', [given]);
      return;
    }
    if (o.to === undefined) custom(ctx, 'is required (HOST:PORT), unless the outlet has a gateway block', ['to']);
    if (o.tls !== true && (o.tlsCa !== undefined || o.tlsServername !== undefined)) custom(ctx, 'tlsCa and tlsServername need tls: true', ['tls']);
    const max = o.maxConnections ?? OUTLET_MAX_TARGET_CONNECTIONS;
    if (o.maxConnectionsPerPeer !== undefined && o.maxConnectionsPerPeer > max) {
      custom(ctx, `${o.maxConnectionsPerPeer} is more than maxConnections (${max})`, ['maxConnectionsPerPeer']);
    }
  })
  .transform((o): OutletSpec => {
    const maxConnections = o.maxConnections ?? OUTLET_MAX_TARGET_CONNECTIONS;
    const spec: OutletSpec = {
      name: o.name ?? o.relay,
      tls: o.tls === true,
      relay: o.relay,
      allow: o.allow,
      maxConnections,
      maxConnectionsPerPeer: o.maxConnectionsPerPeer ?? Math.min(OUTLET_MAX_TARGET_CONNECTIONS_PER_PEER, maxConnections),
    };
    if (o.to !== undefined) spec.to = o.to;
    if (o.gateway !== undefined) spec.gateway = o.gateway;
    if (o.tlsCa !== undefined) spec.tlsCa = o.tlsCa;
    if (o.tlsServername !== undefined) spec.tlsServername = o.tlsServername;
    return spec;
  });

const inletSchema = z
  .object({ name: nameSchema.optional(), from: hostPortSchema(true), via: nameSchema, allow: policySchema }, { invalid_type_error: 'must be an object' })
  .strict(unknownField(INLET_FIELDS))
  .transform((i): InletSpec => ({ name: i.name ?? i.via, from: i.from, via: i.via, allow: i.allow }));

/** A list of resources, its length checked before any entry is (a huge list costs no issue per entry). */
function resourceList<T extends z.ZodTypeAny>(entry: T) {
  return z
    .unknown()
    .superRefine((value, ctx) => {
      if (Array.isArray(value) && value.length > MAX_NODE_RESOURCES) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `has ${value.length} entries, cap ${MAX_NODE_RESOURCES}`, fatal: true });
      }
    })
    .pipe(z.array(entry, { invalid_type_error: 'must be an array' }).nullish())
    .transform((list) => list ?? []);
}

function checkUnique(ctx: z.RefinementCtx, values: string[], list: string, key: string): void {
  const seen = new Set<string>();
  values.forEach((value, i) => {
    if (seen.has(value)) custom(ctx, `${shown(value)} is used twice`, [list, i, key]);
    seen.add(value);
  });
}

const nodeConfigSchema = z
  .object(
    {
      metrics: hostPortSchema(true).optional(),
      outletRelays: z.union([z.literal(1), z.literal(2)], { errorMap: () => ({ message: 'must be 1 or 2 (relays each outlet is registered on)' }) }).optional(),
      outlets: resourceList(outletSchema),
      inlets: resourceList(inletSchema),
    },
    { invalid_type_error: 'must be an object' },
  )
  .strict(unknownField(ROOT_FIELDS))
  .superRefine((config, ctx) => {
    checkUnique(ctx, config.outlets.map((o) => o.name), 'outlets', 'name');
    checkUnique(ctx, config.inlets.map((o) => o.name), 'inlets', 'name');
    checkUnique(ctx, config.outlets.map((o) => o.relay), 'outlets', 'relay');
  })
  .transform(
    (config): NodeConfig => ({
      outlets: config.outlets,
      inlets: config.inlets,
      ...(config.metrics !== undefined ? { metrics: config.metrics } : {}),
      ...(config.outletRelays !== undefined ? { outletRelays: config.outletRelays } : {}),
    }),
  );

// --- the field-named errors --------------------------------------------------------------------

interface Problem {
  path: (string | number)[];
  /** An unknown field: its name (the path is its object's). */
  key?: string;
  message: string;
}

/** The issue to report: an unknown field first (a misspelt key explains the "missing" one), else the first. */
function firstProblem(error: z.ZodError): Problem {
  const issues = error.issues;
  const issue = issues.find((i) => i.code === z.ZodIssueCode.unrecognized_keys) ?? issues[0]!;
  if (issue.code !== z.ZodIssueCode.unrecognized_keys) return { path: issue.path, message: issue.message };
  // zod's own wording (inside the gateway block) quotes every key whole, however long.
  const message = issue.message.startsWith('unknown field') ? issue.message : 'unknown field';
  return { path: issue.path, key: String(issue.keys[0]), message };
}

/** `outlets[0].gateway.backends[1].url` from a root name and a path. */
function fieldName(root: string, path: readonly (string | number)[], key?: string): string {
  const all = key === undefined ? path : [...path, key];
  return all.reduce<string>((at, part) => (typeof part === 'number' ? `${at}[${part}]` : `${at}${at === '' ? '' : '.'}${String(part).slice(0, 40)}`), root);
}

function validate<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, value: unknown, field: string, code: ErrorCode): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problem = firstProblem(result.error);
  return fail(code, fieldName(field, problem.path, problem.key), problem.message);
}

/** Validates an outlet description (a node config entry or the control socket's arguments). */
export function validateOutletSpec(value: unknown, field: string, code: ErrorCode = 'WICKET_ERR_ARGUMENT'): OutletSpec {
  return validate(outletSchema, value, field, code);
}

/** Validates an inlet description (a node config entry or the control socket's arguments). */
export function validateInletSpec(value: unknown, field: string, code: ErrorCode = 'WICKET_ERR_ARGUMENT'): InletSpec {
  return validate(inletSchema, value, field, code);
}

/** The JSON form of a spec (what the node config and the control socket carry). */
export function outletSpecToJson(spec: OutletSpec): Record<string, unknown> {
  if (spec.to !== undefined) return { ...spec, to: formatHostPort(spec.to) };
  // A gateway outlet's form has no `tls` (the schema refuses it there): with the `tls: false`
  // the spec carries, its own JSON form was not a valid outlet.
  const { tls: _tls, ...gateway } = spec;
  return gateway;
}

export function inletSpecToJson(spec: InletSpec): Record<string, unknown> {
  return { ...spec, from: formatHostPort(spec.from) };
}

/**
 * Parses the text of a node config. Every problem is WICKET_ERR_CONFIG naming the field and, when
 * `file` is given, the file (and the field's line in it). Without `file` the text is JSON named
 * node.json, as before YAML. A relative `tlsCa` (or gateway file) is taken relative to `baseDir`
 * (the config file's folder), not to wherever the node happens to be started from.
 */
export function parseNodeConfig(text: string, baseDir?: string, file?: string): NodeConfig {
  const code = 'WICKET_ERR_CONFIG';
  const label = file ?? 'node.json';
  if (text.length > NODE_CONFIG_MAX_BYTES) fail(code, label, `is ${text.length} bytes, cap ${NODE_CONFIG_MAX_BYTES}`);
  const { value } = parseConfigText(text, label, file === undefined ? 'json' : formatOfPath(file));
  const result = nodeConfigSchema.safeParse(value);
  if (!result.success) {
    const problem = firstProblem(result.error);
    if (file === undefined) fail(code, problem.path.length === 0 ? fieldName('node.json', [], problem.key) : fieldName('', problem.path, problem.key), problem.message);
    const where = fieldName('', problem.path, problem.key);
    if (where === '') fail(code, file, `${problem.message} (a mapping of ${ROOT_FIELDS.join(', ')})`);
    const at = positionOf(text, problem.path, problem.key);
    fail(code, where, `${problem.message} (in ${file}${at === undefined ? '' : `, ${at}`})`);
  }
  const config = result.data;
  if (baseDir !== undefined) for (const spec of config.outlets) resolvePaths(spec, baseDir);
  return config;
}

/** Relative file names in a node config are relative to its folder, not to wherever the node starts. */
function resolvePaths(spec: OutletSpec, baseDir: string): void {
  if (spec.tlsCa !== undefined) spec.tlsCa = resolve(baseDir, spec.tlsCa);
  const gateway = spec.gateway;
  if (gateway === undefined) return;
  for (const backend of gateway.backends) {
    if (backend.tlsCa !== undefined) backend.tlsCa = resolve(baseDir, backend.tlsCa);
    if (backend.auth.kind === 'api-key') backend.auth.file = resolve(baseDir, backend.auth.file);
  }
  if (gateway.sharedCounters !== undefined) gateway.sharedCounters = resolve(baseDir, gateway.sharedCounters);
  if (gateway.contentLog !== undefined) gateway.contentLog.path = resolve(baseDir, gateway.contentLog.path);
}

/**
 * Reads a node config file's text. A missing, unreadable, oversized or not-regular file is
 * WICKET_ERR_CONFIG naming it; one this user may not read is WICKET_ERR_PERMISSION.
 */
export function readNodeConfigText(path: string): string {
  try {
    const stat = statSync(path);
    if (!stat.isFile()) fail('WICKET_ERR_CONFIG', path, 'is not a regular file');
    if (stat.size > NODE_CONFIG_MAX_BYTES) fail('WICKET_ERR_CONFIG', path, `is ${stat.size} bytes, cap ${NODE_CONFIG_MAX_BYTES}`);
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (isWicketError(err)) throw err;
    const reason = (err as NodeJS.ErrnoException).code ?? 'read error';
    const permission = reason === 'EACCES' || reason === 'EPERM';
    return fail(permission ? 'WICKET_ERR_PERMISSION' : 'WICKET_ERR_CONFIG', path, `cannot be read (${reason})`);
  }
}

/** Reads and parses a node config file (YAML or JSON). */
export function loadNodeConfig(path: string): NodeConfig {
  return parseNodeConfig(readNodeConfigText(path), dirname(resolve(path)), path);
}
