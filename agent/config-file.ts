import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, openSync, realpathSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { type ErrorCode, wicketError } from '../protocol/errors.js';
import { type ConfigEdit, type ConfigFormat, editConfigText, formatOfPath, parseConfigText, type ResourceList } from './config-file-text.js';
import { loadNodeConfig, type NodeConfig, parseNodeConfig, readNodeConfigText } from './node-config.js';

// The node's config file: what `agent node start` runs at start, and where `agent inlet/outlet
// create/delete` record their change so a restart brings the resources back.
//
// Which file: `--config FILE` when given (it must exist; an empty file is an empty config);
// otherwise `node.yaml` or `node.json` in the agent home, whichever is there (both is refused as
// ambiguous), else `node.yaml`, made on the first create.
//
// One node process owns the file (the control socket refuses a second node on a home). Each change
// re-reads the file, so edits made by hand while the node runs are kept (they apply at the next
// start); the new text is validated as the next start would validate it, then written to a 0600
// temp file in the same folder, fsynced and renamed over the file: a crash leaves the old file or
// the new one, never half of one. The reads, edits and writes are synchronous, so two changes
// within the node can never interleave.

const DEFAULT_NAMES = ['node.yaml', 'node.json'] as const;

export class NodeConfigFile {
  /** Absolute path of the file (it may not exist yet). */
  readonly path: string;
  /** Given with --config (must exist), rather than the home's default (made when needed). */
  readonly explicit: boolean;

  private constructor(path: string, explicit: boolean) {
    this.path = path;
    this.explicit = explicit;
  }

  /** `--config FILE` when given, else the home's node.yaml or node.json. */
  static choose(home: string, configFlag?: string): NodeConfigFile {
    if (configFlag !== undefined) return new NodeConfigFile(resolve(configFlag), true);
    const present = DEFAULT_NAMES.map((name) => join(resolve(home), name)).filter((path) => existsSync(path));
    if (present.length > 1) {
      throw wicketError('WICKET_ERR_CONFIG', `both ${present.join(' and ')} exist; keep one (or name one with --config FILE)`);
    }
    return new NodeConfigFile(present[0] ?? join(resolve(home), DEFAULT_NAMES[0]), false);
  }

  /** The resources to start with: the file's, or none while the home's default does not exist yet. */
  load(): NodeConfig {
    if (!this.explicit && !existsSync(this.path)) return { inlets: [], outlets: [] };
    return loadNodeConfig(this.path);
  }

  /** Appends a resource entry (already accepted by the node) to `list`. */
  add(list: ResourceList, entry: Record<string, unknown>): void {
    this.#update({ add: list, entry });
  }

  /** Removes the resource named `name` from `list`; nothing to do when the file does not list it. */
  remove(list: ResourceList, name: string): void {
    this.#update((config) => {
      const index = config[list].findIndex((spec) => spec.name === name);
      return index < 0 ? undefined : { remove: list, index };
    });
  }

  #update(change: ConfigEdit | ((config: NodeConfig) => ConfigEdit | undefined)): void {
    const target = this.#target();
    const text = existsSync(target) ? readNodeConfigText(target) : '';
    const base = dirname(target);
    // The file as it is must be valid: a change is never made on top of something the node would refuse.
    const config = parseNodeConfig(text, base, this.path);
    const edit = typeof change === 'function' ? change(config) : change;
    if (edit === undefined) return;
    const next = editConfigText(text, this.#format(text), edit);
    // The next start must accept what is written (a hand-added entry may now clash with this one).
    parseNodeConfig(next, base, this.path);
    this.#writeAtomically(target, next);
  }

  /** The file to read and replace: a symlinked config is followed, so the link stays a link. */
  #target(): string {
    try {
      return realpathSync(this.path);
    } catch {
      return this.path;
    }
  }

  #format(text: string): ConfigFormat {
    return formatOfPath(this.path) ?? (text.trim() === '' ? 'yaml' : parseConfigText(text, this.path).format);
  }

  #writeAtomically(path: string, text: string): void {
    const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const fd = openSync(tmp, 'wx', 0o600);
      try {
        // The umask may only remove bits; chmod makes the mode explicit for odd umasks too.
        chmodSync(tmp, 0o600);
        const data = Buffer.from(text, 'utf8');
        let offset = 0;
        while (offset < data.length) offset += writeSync(fd, data, offset, data.length - offset);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    } catch (err) {
      rmSync(tmp, { force: true });
      const reason = (err as NodeJS.ErrnoException).code ?? 'write error';
      const code: ErrorCode = reason === 'EACCES' || reason === 'EPERM' || reason === 'EROFS' ? 'WICKET_ERR_PERMISSION' : 'WICKET_ERR_CONFIG';
      throw wicketError(code, `cannot write the node config ${path} (${reason}); make it and its folder writable by this user, or start the node with --config FILE`, err);
    }
    syncFolder(dirname(path));
  }
}

/** Makes the rename itself durable; best effort (some filesystems refuse to fsync a folder). */
function syncFolder(folder: string): void {
  try {
    const fd = openSync(folder, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // the file is written; only its survival of a power cut is less certain
  }
}
