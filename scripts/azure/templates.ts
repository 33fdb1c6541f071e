import { readFileSync } from 'node:fs';
import { wicketError } from '../../protocol/errors.js';

// The files in scripts/azure/templates/ carry @@NAME@@ placeholders (shell-neutral, so shellcheck
// reads the raw templates). Rendering is strict: every placeholder must get a value, and a value
// must match the alphabet its caller declares, so nothing from the environment can break out of
// a shell word or a systemd line.

export type TemplateName =
  | 'install-wicket.sh'
  | 'relay-bootstrap.sh'
  | 'agent-bootstrap.sh'
  | 'wicket-relay.service'
  | 'wicket-agent.service'
  | 'wicket-demo.service'
  | 'run-demo.sh'
  | 'wait-for-bootstrap.sh'
  | 'mint-ticket.sh'
  | 'read-admin-ticket.sh'
  | 'read-demo-answer.sh';

/** Characters a placeholder value may hold: URL-ish, no quotes, no `$`, no backticks, no newlines. */
export const SAFE_WORD = /^[A-Za-z0-9._~:/@+%=,-]*$/;
/** A list of safe words separated by single spaces (unit lists, command-line flags). */
export const SAFE_WORDS = /^([A-Za-z0-9._~:/@+%=,-]+( [A-Za-z0-9._~:/@+%=,-]+)*)?$/;

const PLACEHOLDER = /@@([A-Z][A-Z0-9_]*)@@/g;

export function templateText(name: TemplateName): string {
  return readFileSync(new URL(`./templates/${name}`, import.meta.url), 'utf8');
}

export function placeholdersOf(text: string): string[] {
  return [...new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1] ?? ''))];
}

export interface TemplateValue {
  value: string;
  /** SAFE_WORD unless the caller needs a space-separated list. */
  alphabet?: RegExp;
}

export function renderText(templateName: string, text: string, values: Record<string, TemplateValue>): string {
  for (const [key, v] of Object.entries(values)) {
    if (!(v.alphabet ?? SAFE_WORD).test(v.value)) {
      // The value itself is not echoed: it may be anything, and this message may be logged.
      throw wicketError('WICKET_ERR_AZURE_CONFIG', `template ${templateName}: the value for ${key} holds characters that are not allowed there`);
    }
  }
  return text.replace(PLACEHOLDER, (_match, key: string) => {
    const v = values[key];
    if (v === undefined) throw wicketError('WICKET_ERR_INTERNAL', `template ${templateName}: no value for @@${key}@@`);
    return v.value;
  });
}

export function renderTemplate(name: TemplateName, values: Record<string, TemplateValue> = {}): string {
  return renderText(name, templateText(name), values);
}

/** `{ A: 'x' }` -> `{ A: { value: 'x' } }` for the common single-word case. */
export function words(values: Record<string, string>): Record<string, TemplateValue> {
  return Object.fromEntries(Object.entries(values).map(([k, value]) => [k, { value }]));
}
