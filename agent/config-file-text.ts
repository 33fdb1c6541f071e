import { extname } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { wicketError } from '../protocol/errors.js';
import { NODE_CONFIG_MAX_YAML_ALIASES } from '../protocol/limits.js';

// The text of a node config file, YAML or JSON: parsing it into plain values (with the file, line
// and column of a syntax error), and editing it for `inlet/outlet create/delete` without losing
// what the node did not write: YAML is edited through the yaml package's Document, so comments,
// key order, quoting and the parts no command touches (a gateway block, say) stay as they were;
// JSON keeps every key it had, re-indented by two.
//
// The format comes from the extension (.yaml/.yml, .json); any other name is tried as JSON, then
// as YAML. An empty file (or one of YAML comments alone) is an empty config, so `touch` makes one.

export type ConfigFormat = 'yaml' | 'json';
export type ResourceList = 'inlets' | 'outlets';
export type ConfigEdit = { add: ResourceList; entry: Record<string, unknown> } | { remove: ResourceList; index: number };

export function formatOfPath(path: string): ConfigFormat | undefined {
  const ext = extname(path).toLowerCase();
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  if (ext === '.json') return 'json';
  return undefined;
}

function bad(label: string, problem: string): never {
  throw wicketError('WICKET_ERR_CONFIG', `${label}: ${problem}`);
}

/** "line L, column C" of a character offset (both from 1). */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const line = before.split('\n').length;
  return `line ${line}, column ${before.length - before.lastIndexOf('\n')}`;
}

function parseJson(text: string, label: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const offset = jsonErrorOffset(text, message);
    // V8 quotes the start of the text in some messages: the place is enough, and shorter.
    const reason = message.replace(/ in JSON at position \d+.*$/s, '').replace(/, (\.\.\.)?".*"(\.\.\.)? is not valid JSON$/s, '');
    bad(label, `is not valid JSON (${offset === undefined ? '' : `${lineColumn(text, offset)}: `}${reason.slice(0, 120)})`);
  }
  const duplicate = duplicateJsonKey(text);
  // JSON.parse keeps the last of two equal keys without a word; which one the author meant is unknowable.
  if (duplicate !== undefined) bad(label, `${JSON.stringify(duplicate.key.slice(0, 40))} appears twice in one object (${lineColumn(text, duplicate.offset)})`);
  return value;
}

/** Where V8's JSON.parse stopped: its "at position N", the end for a truncated text, else found. */
function jsonErrorOffset(text: string, message: string): number | undefined {
  const position = /at position (\d+)/.exec(message);
  if (position !== null) return Number(position[1]);
  if (message.startsWith('Unexpected end of JSON input')) return text.length;
  // "Unexpected token 'x', …" names no place. Cut after each 'x' in turn: before the culprit the
  // text so far parses or is merely unfinished; from it on, the same complaint. That is monotone,
  // so a binary search over the x's finds the culprit in a few parses, however big the file.
  const token = /^Unexpected token '(.)'/su.exec(message)?.[1];
  if (token === undefined) return undefined;
  const complaint = `Unexpected token '${token}'`;
  const candidates: number[] = [];
  for (let i = text.indexOf(token); i >= 0; i = text.indexOf(token, i + 1)) candidates.push(i);
  const failsThrough = (index: number): boolean => {
    try {
      JSON.parse(text.slice(0, index + 1));
      return false;
    } catch (err) {
      return err instanceof Error && err.message.startsWith(complaint);
    }
  };
  let low = 0;
  let high = candidates.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (failsThrough(candidates[middle]!)) high = middle;
    else low = middle + 1;
  }
  return candidates.length > 0 && failsThrough(candidates[low]!) ? candidates[low] : undefined;
}

/** The first key repeated within one object of a text JSON.parse accepted. Iterative: nesting depth costs no stack. */
function duplicateJsonKey(text: string): { key: string; offset: number } | undefined {
  const open: (Set<string> | null)[] = []; // a set of keys per open object, null per open array
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const keys = open[open.length - 1];
      if (expectKey && keys) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (keys.has(key)) return { key, offset: i };
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (ch === '{' || ch === '[') {
      open.push(ch === '{' ? new Set() : null);
      expectKey = ch === '{';
    } else if (ch === '}' || ch === ']') {
      open.pop();
      expectKey = false;
    } else if (ch === ',') {
      expectKey = open[open.length - 1] instanceof Set;
    }
  }
  return undefined;
}

function parseYamlDocument(text: string, label: string, lineCounter?: LineCounter): Document.Parsed {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, ...(lineCounter !== undefined ? { lineCounter } : {}) });
  // Warnings too (an unknown tag, say): a config the node half understands is refused, not guessed at.
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem !== undefined) {
    const at = problem.linePos?.[0];
    const where = at === undefined ? '' : `line ${at.line}, column ${at.col}: `;
    const message = problem.message.split('\n', 1)[0]!.replace(/ at line \d+, column \d+:?$/, '');
    bad(label, `is not valid YAML (${where}${message.slice(0, 160)})`);
  }
  return doc;
}

function yamlValue(doc: Document.Parsed, label: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: NODE_CONFIG_MAX_YAML_ALIASES }) ?? {};
  } catch (err) {
    // An alias bomb (ReferenceError "Excessive alias count"), an unresolved alias, nesting past the stack.
    return bad(label, `is not a usable YAML document (${(err instanceof Error ? err.message : String(err)).slice(0, 120)})`);
  }
}

/** Parses a config text into plain values. `format` undefined: JSON if it parses as JSON, else YAML. */
export function parseConfigText(text: string, label: string, format?: ConfigFormat): { value: unknown; format: ConfigFormat } {
  const detected = format ?? (isJson(text) ? 'json' : 'yaml');
  if (text.trim() === '') return { value: {}, format: detected };
  if (detected === 'json') return { value: parseJson(text, label), format: 'json' };
  return { value: yamlValue(parseYamlDocument(text, label), label), format: 'yaml' };
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where `path` (and, when given, its `key`) sits in the text: "line L, column C", for naming a
 * field's place in an error. JSON is read as the YAML it also is. Undefined when it cannot say.
 */
export function positionOf(text: string, path: readonly (string | number)[], key?: string): string | undefined {
  try {
    const lineCounter = new LineCounter();
    const doc = parseYamlDocument(text, 'config', lineCounter);
    const node = path.length === 0 ? doc.contents : doc.getIn(path, true);
    let offset: number | undefined;
    if (key !== undefined && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      offset = isScalar(pair?.key) ? pair.key.range?.[0] : undefined;
    } else if (node !== null && typeof node === 'object' && 'range' in node) {
      offset = (node as { range?: [number, number, number] }).range?.[0];
    }
    if (offset === undefined) return undefined;
    const at = lineCounter.linePos(offset);
    return `line ${at.line}, column ${at.col}`;
  } catch {
    return undefined;
  }
}

/** The text after one edit, in the same format. The text must be one parseConfigText accepted. */
export function editConfigText(text: string, format: ConfigFormat, edit: ConfigEdit): string {
  if (format === 'json') {
    const root = (text.trim() === '' ? {} : JSON.parse(text)) as Record<string, unknown>;
    if ('add' in edit) root[edit.add] = [...((root[edit.add] as unknown[] | null | undefined) ?? []), edit.entry];
    else (root[edit.remove] as unknown[]).splice(edit.index, 1);
    return `${JSON.stringify(root, null, 2)}\n`;
  }
  const doc: Document = parseYamlDocument(text, 'config');
  if (doc.contents === null) doc.contents = doc.createNode({});
  if ('add' in edit) {
    const list = doc.get(edit.add, true);
    if (isSeq(list)) {
      // `inlets: []` becomes a block list once it has an entry: one resource per paragraph.
      if (list.items.length === 0) list.flow = false;
      list.items.push(doc.createNode(edit.entry));
    } else {
      doc.set(edit.add, doc.createNode([edit.entry]));
    }
  } else {
    doc.deleteIn([edit.remove, edit.index]);
  }
  return doc.toString({ lineWidth: 0 });
}
