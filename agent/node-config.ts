import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
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
import { type GatewaySpec, validateGatewaySpec } from './gateway/gateway-spec.js';

// The shapes of a node's resources and their strict validation. One validator serves three doors:
// node.json (WICKET_ERR_CONFIG), the CLI's arguments and the control socket (WICKET_ERR_ARGUMENT),
// so a resource that reaches the node has the same guarantees whichever way it came in.
//
//   node.json = { "outlets": [{ name?, to, tls?, tlsCa?, tlsServername?, relay, allow,
//                               maxConnections?, maxConnectionsPerPeer? }
//                             | { name?, relay, allow, gateway, maxConnections?, … }],
//                 "inlets":  [{ name?, from, via, allow }] }
//
// Unknown fields are refused (a misspelt "tlsCA" must not silently turn certificate checks into
// system roots), and every error names the field, e.g. `outlets[0].to`.

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
}

const HOSTNAME_PATTERN = /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;
const MAX_PATH_LEN = 4_096;

function fail(code: ErrorCode, field: string, problem: string): never {
  throw wicketError(code, `${field}: ${problem}`);
}

function shown(value: unknown): string {
  return JSON.stringify(typeof value === 'string' ? value.slice(0, 80) : value)?.slice(0, 80) ?? String(value);
}

/** A relay or resource name (resources follow the relay-name rule, as they default to it). */
export function parseName(value: unknown, field: string, code: ErrorCode = 'WICKET_ERR_ARGUMENT'): string {
  if (typeof value !== 'string') fail(code, field, 'must be a string');
  if (!isRelayName(value)) fail(code, field, `${shown(value)} is not a name (${RELAY_NAME_RULE})`);
  return value;
}

/**
 * `HOST:PORT`, `[IPv6]:PORT`. `allowPortZero` for listen addresses (port 0 = any free port).
 * Hosts are an IP literal or a DNS name; nothing else reaches net.connect or net.listen.
 */
export function parseHostPort(value: unknown, field: string, options: { code?: ErrorCode; allowPortZero?: boolean } = {}): HostPort {
  const code = options.code ?? 'WICKET_ERR_ARGUMENT';
  if (typeof value !== 'string') fail(code, field, 'must be a string HOST:PORT');
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (match === null) fail(code, field, `${shown(value)} is not HOST:PORT (e.g. 127.0.0.1:8443 or [::1]:8443)`);
  const host = (match[1] ?? match[2])!;
  const bracketed = match[1] !== undefined;
  if (bracketed ? isIP(host) !== 6 : !(isIP(host) === 4 || HOSTNAME_PATTERN.test(host))) {
    fail(code, field, `${shown(host)} is not an IP address or host name`);
  }
  const port = Number(match[3]);
  if (port > 65_535 || (port === 0 && options.allowPortZero !== true)) fail(code, field, `port ${port} is out of range`);
  return { host, port };
}

export function formatHostPort(address: HostPort): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

export function checkPolicy(value: unknown, field: string, code: ErrorCode = 'WICKET_ERR_ARGUMENT'): string {
  if (typeof value !== 'string') fail(code, field, 'must be a policy expression string');
  try {
    parsePolicy(value);
  } catch (err) {
    // Keep the parser's own code (WICKET_ERR_POLICY_SYNTAX) in the message: it says what is wrong.
    const detail = err instanceof Error ? err.message : String(err);
    fail(code, field, detail);
  }
  return value;
}

function asRecord(value: unknown, field: string, code: ErrorCode, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(code, field, 'must be an object');
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) fail(code, `${field}.${key.slice(0, 40)}`, `unknown field (expected one of ${allowed.join(', ')})`);
  }
  return record;
}

function optionalString(record: Record<string, unknown>, key: string, field: string, code: ErrorCode, max: number): string | undefined {
  const value = record[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > max || value.includes('\0')) {
    fail(code, `${field}.${key}`, `must be a non-empty string of at most ${max} characters`);
  }
  return value;
}

/** A connection limit: a whole number from 1 to MAX_TARGET_CONNECTIONS_SETTING. */
function optionalCount(value: unknown, field: string, code: ErrorCode): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > MAX_TARGET_CONNECTIONS_SETTING) {
    fail(code, field, `must be a whole number from 1 to ${MAX_TARGET_CONNECTIONS_SETTING}`);
  }
  return value as number;
}

const OUTLET_FIELDS = ['name', 'to', 'tls', 'tlsCa', 'tlsServername', 'relay', 'allow', 'gateway', 'maxConnections', 'maxConnectionsPerPeer'] as const;
const INLET_FIELDS = ['name', 'from', 'via', 'allow'] as const;

/** Validates an outlet description from JSON (node.json or the control socket). */
export function validateOutletSpec(value: unknown, field: string, code: ErrorCode = 'WICKET_ERR_ARGUMENT'): OutletSpec {
  const r = asRecord(value, field, code, OUTLET_FIELDS);
  const relay = parseName(r.relay, `${field}.relay`, code);
  const name = r.name === undefined ? relay : parseName(r.name, `${field}.name`, code);
  const gateway = r.gateway === undefined ? undefined : validateGatewaySpec(r.gateway, `${field}.gateway`, code);
  // The field named is the one given (it was always `.to`, even for a stray `tls`).
  const targetField = gateway === undefined ? undefined : (['to', 'tls', 'tlsCa', 'tlsServername'] as const).find((key) => r[key] !== undefined);
  if (targetField !== undefined) {
    fail(code, `${field}.${targetField}`, 'a gateway outlet has no to/tls/tlsCa/tlsServername: its gateway.backends are the targets');
  }
  if (gateway === undefined && r.to === undefined) fail(code, `${field}.to`, 'is required (HOST:PORT), unless the outlet has a gateway block');
  const to = gateway === undefined ? parseHostPort(r.to, `${field}.to`, { code }) : undefined;
  if (r.tls !== undefined && typeof r.tls !== 'boolean') fail(code, `${field}.tls`, 'must be true or false');
  const tls = r.tls === true;
  const tlsCa = optionalString(r, 'tlsCa', field, code, MAX_PATH_LEN);
  const tlsServername = optionalString(r, 'tlsServername', field, code, 253);
  if (tlsServername !== undefined && !HOSTNAME_PATTERN.test(tlsServername)) fail(code, `${field}.tlsServername`, `${shown(tlsServername)} is not a host name`);
  if (!tls && (tlsCa !== undefined || tlsServername !== undefined)) {
    fail(code, `${field}.tls`, 'tlsCa and tlsServername need tls: true');
  }
  const allow = checkPolicy(r.allow, `${field}.allow`, code);
  const maxConnections = optionalCount(r.maxConnections, `${field}.maxConnections`, code) ?? OUTLET_MAX_TARGET_CONNECTIONS;
  const maxConnectionsPerPeer =
    optionalCount(r.maxConnectionsPerPeer, `${field}.maxConnectionsPerPeer`, code) ?? Math.min(OUTLET_MAX_TARGET_CONNECTIONS_PER_PEER, maxConnections);
  if (maxConnectionsPerPeer > maxConnections) fail(code, `${field}.maxConnectionsPerPeer`, `${maxConnectionsPerPeer} is more than maxConnections (${maxConnections})`);
  const spec: OutletSpec = { name, tls, relay, allow, maxConnections, maxConnectionsPerPeer };
  if (to !== undefined) spec.to = to;
  if (gateway !== undefined) spec.gateway = gateway;
  if (tlsCa !== undefined) spec.tlsCa = tlsCa;
  if (tlsServername !== undefined) spec.tlsServername = tlsServername;
  return spec;
}

/** Validates an inlet description from JSON (node.json or the control socket). */
export function validateInletSpec(value: unknown, field: string, code: ErrorCode = 'WICKET_ERR_ARGUMENT'): InletSpec {
  const r = asRecord(value, field, code, INLET_FIELDS);
  const via = parseName(r.via, `${field}.via`, code);
  const name = r.name === undefined ? via : parseName(r.name, `${field}.name`, code);
  const from = parseHostPort(r.from, `${field}.from`, { code, allowPortZero: true });
  const allow = checkPolicy(r.allow, `${field}.allow`, code);
  return { name, from, via, allow };
}

/** The JSON form of a spec (what node.json and the control socket carry). */
export function outletSpecToJson(spec: OutletSpec): Record<string, unknown> {
  if (spec.to !== undefined) return { ...spec, to: formatHostPort(spec.to) };
  // A gateway outlet's form has no `tls` (validateOutletSpec refuses it there): with the `tls: false`
  // the spec carries, its own JSON form was not a valid outlet.
  const { tls: _tls, ...gateway } = spec;
  return gateway;
}

export function inletSpecToJson(spec: InletSpec): Record<string, unknown> {
  return { ...spec, from: formatHostPort(spec.from) };
}

/**
 * Parses the text of node.json. Every problem is WICKET_ERR_CONFIG naming the field. A relative
 * `tlsCa` is taken relative to `baseDir` (the config file's folder), not to wherever the node
 * happens to be started from.
 */
export function parseNodeConfig(text: string, baseDir?: string): NodeConfig {
  const code = 'WICKET_ERR_CONFIG';
  if (text.length > NODE_CONFIG_MAX_BYTES) fail(code, 'node.json', `is ${text.length} bytes, cap ${NODE_CONFIG_MAX_BYTES}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    fail(code, 'node.json', `is not valid JSON (${err instanceof Error ? err.message.slice(0, 120) : 'parse error'})`);
  }
  const root = asRecord(parsed, 'node.json', code, ['outlets', 'inlets']);
  const list = (key: 'outlets' | 'inlets'): unknown[] => {
    const value = root[key];
    if (value === undefined) return [];
    if (!Array.isArray(value)) fail(code, key, 'must be an array');
    if (value.length > MAX_NODE_RESOURCES) fail(code, key, `has ${value.length} entries, cap ${MAX_NODE_RESOURCES}`);
    return value;
  };
  const outlets = list('outlets').map((o, i) => {
    const spec = validateOutletSpec(o, `outlets[${i}]`, code);
    if (baseDir !== undefined) resolvePaths(spec, baseDir);
    return spec;
  });
  const inlets = list('inlets').map((o, i) => validateInletSpec(o, `inlets[${i}]`, code));
  checkUnique(outlets.map((o) => o.name), 'outlets', code);
  checkUnique(inlets.map((o) => o.name), 'inlets', code);
  checkUnique(outlets.map((o) => o.relay), 'outlets', code, 'relay');
  return { outlets, inlets };
}

/** Relative file names in node.json are relative to its folder, not to wherever the node starts. */
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

function checkUnique(values: string[], field: string, code: ErrorCode, key = 'name'): void {
  const seen = new Set<string>();
  values.forEach((value, i) => {
    if (seen.has(value)) fail(code, `${field}[${i}].${key}`, `${shown(value)} is used twice`);
    seen.add(value);
  });
}

/** Reads and parses node.json; a missing, unreadable or oversized file is WICKET_ERR_CONFIG too. */
export function loadNodeConfig(path: string): NodeConfig {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > NODE_CONFIG_MAX_BYTES) fail('WICKET_ERR_CONFIG', path, `is ${size} bytes, cap ${NODE_CONFIG_MAX_BYTES}`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (isWicketError(err)) throw err;
    const reason = (err as NodeJS.ErrnoException).code ?? 'read error';
    fail('WICKET_ERR_CONFIG', path, `cannot be read (${reason})`);
  }
  return parseNodeConfig(text, dirname(resolve(path)));
}
