import { randomBytes } from 'node:crypto';
import { Secret } from '../../../protocol/secret.js';
import { encodeTicket } from '../../../protocol/ticket.js';
import type { RunCommandHandler, RunCommandRequest } from './server.js';

// What the stand-in's VMs answer to run-command: a scripted imitation of a Wicket VM after its
// cloud-init finished. It recognises the commands that matter: `relay … ticket create`
// prints the JSON `relay ticket create --json` prints (a real, decodable ticket for the relay URL
// the VM's own cloud-init gave `relay start --public-url`), reading the admin-ticket file prints a
// ticket, reading the demo answer prints the answer, and a trailing `echo "…$?"` prints the status.
// A VM whose cloud-init holds no `relay start` has no relay program, as on a real agent VM.

export interface MintedTicket {
  vmName: string;
  attributes: string[];
  relayNames: string[];
  usageCount: string | undefined;
  expiresIn: string | undefined;
  ticket: string;
}

export interface VmEmulatorState {
  minted: MintedTicket[];
  adminTicket: string | undefined;
  demoAnswer: string;
  /** VMs whose first-boot bootstrap is made to have failed (run-commands waiting on it exit 3). */
  failedBootstrap: Set<string>;
}

export const DEFAULT_DEMO_ANSWER = "Ockham's Razor is the principle that, among competing explanations, the one with the fewest assumptions should be preferred.";

const EXIT_ECHO = /^echo "([^"$]*)\$\?"$/;

function mintTicket(relayUrl: string): string {
  return encodeTicket({
    relayUrl,
    relayCertFingerprint: randomBytes(32),
    authorityPublicKey: randomBytes(32),
    ticketId: randomBytes(16),
    secret: new Secret(randomBytes(32)),
    expiresAt: Date.now() + 60 * 60_000,
  });
}

function allFlags(text: string, flag: string): string[] {
  return [...text.matchAll(new RegExp(`${flag} (\\S+)`, 'g'))].map((m) => m[1] ?? '');
}

/** The text of every file the VM's cloud-init wrote (the document is JSON after its header). */
function filesOf(customData: string | undefined): string {
  if (customData === undefined) return '';
  try {
    const doc = JSON.parse(customData.replace(/^#cloud-config\n/, '')) as { write_files?: Array<{ content?: unknown }> };
    return (doc.write_files ?? []).map((f) => String(f.content ?? '')).join('\n');
  } catch {
    return '';
  }
}

export function wicketVmEmulator(state: VmEmulatorState): RunCommandHandler {
  return (req: RunCommandRequest) => {
    const script = req.script.join('\n');
    const exitEcho = req.script.map((l) => EXIT_ECHO.exec(l.trim())).find((m) => m !== null);
    const result = (stdout: string, stderr: string, status: number) => ({
      stdout: exitEcho ? `${stdout}${stdout === '' || stdout.endsWith('\n') ? '' : '\n'}${exitEcho[1]}${status}` : stdout,
      stderr,
    });
    if (script.includes('/var/lib/wicket-bootstrap/state') && state.failedBootstrap.has(req.vmName)) {
      return result('', 'bootstrap state: failed; last lines of /var/log/wicket-bootstrap.log:\nE: Unable to locate package nodejs', 3);
    }
    const relayUrl = /--public-url (\S+)/.exec(filesOf(req.customData))?.[1];
    if (script.includes('ticket create') || script.includes('/var/lib/wicket-relay/admin-ticket')) {
      if (relayUrl === undefined) return result('', 'runuser: failed to execute /usr/bin/node /opt/wicket/bin/relay.js: no relay on this VM', 127);
    }
    if (script.includes('relay.js ticket create') && relayUrl !== undefined) {
      const ticket = mintTicket(relayUrl);
      const line = /relay\.js ticket create.*/.exec(script)?.[0] ?? '';
      state.minted.push({
        vmName: req.vmName,
        attributes: allFlags(line, '--attribute'),
        relayNames: allFlags(line, '--relay'),
        usageCount: allFlags(line, '--usage-count')[0],
        expiresIn: allFlags(line, '--expires-in')[0],
        ticket,
      });
      const expiresAt = new Date(Date.now() + 60 * 60_000).toISOString();
      return result(JSON.stringify({ ticket, ticketId: randomBytes(16).toString('hex'), expiresAt }), '', 0);
    }
    if (script.includes('cat /var/lib/wicket-relay/admin-ticket') && relayUrl !== undefined) {
      state.adminTicket ??= mintTicket(relayUrl);
      return result(state.adminTicket, '', 0);
    }
    if (script.includes('/var/lib/wicket/demo-answer.txt')) return result(state.demoAnswer, '', 0);
    return result('', '', 0);
  };
}
