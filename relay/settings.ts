import {
  KEEPALIVE_DEAD_AFTER_MS,
  KEEPALIVE_INTERVAL_MS,
  KEEPALIVE_SWEEP_MS,
  MAX_CIRCUITS_PER_CONNECTION,
  MESH_DIAL_TIMEOUT_MS,
  RELAY_AUTH_TIMEOUT_MS,
  RELAY_CLOSE_GRACE_MS,
  RELAY_HARD_CAP_BYTES,
  RELAY_HIGH_WATER_BYTES,
  RELAY_HTTP_TIMEOUT_MS,
  RELAY_LOW_WATER_BYTES,
  REVOCATION_POLL_INTERVAL_MS,
} from '../protocol/limits.js';

// The relay's tunables, defaulting to protocol/limits.ts. Tests inject small values (a short
// keepalive, a tiny high-water mark) instead of waiting on production timers.

export interface RelaySettings {
  readonly authTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveDeadAfterMs: number;
  readonly keepaliveSweepMs: number;
  readonly highWaterBytes: number;
  readonly lowWaterBytes: number;
  readonly hardCapBytes: number;
  readonly maxCircuitsPerConnection: number;
  readonly revocationPollMs: number;
  readonly closeGraceMs: number;
  /** A plain HTTP request (or a TLS handshake) must be complete within this (relay-http.ts). */
  readonly httpTimeoutMs: number;
  /** A relay-to-relay link must finish its mutual handshake within this (relay/mesh/mesh-link.ts). */
  readonly meshHandshakeTimeoutMs: number;
}

export const DEFAULT_RELAY_SETTINGS: RelaySettings = {
  authTimeoutMs: RELAY_AUTH_TIMEOUT_MS,
  keepaliveIntervalMs: KEEPALIVE_INTERVAL_MS,
  keepaliveDeadAfterMs: KEEPALIVE_DEAD_AFTER_MS,
  keepaliveSweepMs: KEEPALIVE_SWEEP_MS,
  highWaterBytes: RELAY_HIGH_WATER_BYTES,
  lowWaterBytes: RELAY_LOW_WATER_BYTES,
  hardCapBytes: RELAY_HARD_CAP_BYTES,
  maxCircuitsPerConnection: MAX_CIRCUITS_PER_CONNECTION,
  revocationPollMs: REVOCATION_POLL_INTERVAL_MS,
  closeGraceMs: RELAY_CLOSE_GRACE_MS,
  httpTimeoutMs: RELAY_HTTP_TIMEOUT_MS,
  meshHandshakeTimeoutMs: MESH_DIAL_TIMEOUT_MS,
};

export function relaySettings(overrides: Partial<RelaySettings> = {}): RelaySettings {
  const settings = { ...DEFAULT_RELAY_SETTINGS, ...overrides };
  if (!(settings.lowWaterBytes < settings.highWaterBytes && settings.highWaterBytes < settings.hardCapBytes)) {
    throw new RangeError('relay settings need lowWaterBytes < highWaterBytes < hardCapBytes');
  }
  return settings;
}
