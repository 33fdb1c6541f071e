import type { Logger } from 'pino';
import type { AdminOps } from './admin.js';
import type { Authority } from './authority/authority.js';
import type { FlowControl } from './flow-control.js';
import type { Keepalive } from './keepalive.js';
import type { LiveConnections } from './live-connections.js';
import type { RefusalLog } from './refusal-log.js';
import type { ConnectionCounts } from './relay-counters.js';
import type { RelayDirectory } from './relay-directory.js';
import type { Revocation } from './revocation.js';
import type { Router } from './router.js';
import type { RelaySettings } from './settings.js';
import type { FrameTap } from './tap.js';

/** The relay's parts a connection reports to and asks of (server.ts makes one set per relay). */
export interface ConnectionServices {
  readonly authority: Authority;
  readonly router: Router;
  readonly flow: FlowControl;
  readonly keepalive: Keepalive;
  readonly revocation: Revocation;
  readonly directory: RelayDirectory;
  readonly admin: AdminOps;
  readonly connections: LiveConnections;
  readonly refusals: RefusalLog;
  readonly counters: ConnectionCounts;
  readonly settings: RelaySettings;
  readonly logger: Logger;
  readonly tap?: FrameTap;
}
