import { asWicketError, wicketError } from '../protocol/errors.js';
import type { NodeConfigFile } from './config-file.js';
import type { ResourceList } from './config-file-text.js';
import type { ControlHandler, ControlOp } from './control-server.js';
import { parseName } from './node-config.js';

// Makes `inlet/outlet create/delete` on the control socket lasting: each change the node accepts is
// recorded in its config file, so a restart brings the same resources back. The file and the
// running node never disagree after a request:
//
//   create   the node first (its refusal leaves the file untouched), then the file; when the file
//            cannot be written, the new resource is deleted again and the request fails with the
//            file's error (WICKET_ERR_PERMISSION, WICKET_ERR_CONFIG): nothing silently unpersisted.
//   delete   the file first (its failure leaves the running resource as it was), then the node.
//
// Changes run one at a time, so a delete cannot slip between a create and its write.

const CHANGES: Partial<Record<ControlOp, { list: ResourceList; kind: 'inlet' | 'outlet'; action: 'create' | 'delete' }>> = {
  'inlet.create': { list: 'inlets', kind: 'inlet', action: 'create' },
  'inlet.delete': { list: 'inlets', kind: 'inlet', action: 'delete' },
  'outlet.create': { list: 'outlets', kind: 'outlet', action: 'create' },
  'outlet.delete': { list: 'outlets', kind: 'outlet', action: 'delete' },
};

export function persistResourceChanges(handler: ControlHandler, file: NodeConfigFile): ControlHandler {
  let changes: Promise<unknown> = Promise.resolve();
  return (op, args) => {
    const change = CHANGES[op];
    if (change === undefined) return handler(op, args);
    const run = changes.then(async () => {
      const { list, kind } = change;
      if (change.action === 'create') {
        const result = (await handler(op, args)) as { name: string };
        try {
          // The entry as the caller gave it (defaults stay defaults), its name written out.
          file.add(list, { name: result.name, ...args });
        } catch (err) {
          await undo(handler, `${kind}.delete`, result.name);
          throw refused(err, `${kind} ${result.name} was not created`);
        }
        return result;
      }
      const name = parseName(args.name, 'name');
      const running = ((await handler(`${kind}.list`, {})) as { name: string }[]).some((r) => r.name === name);
      // An unknown name goes to the node as it is, for its WICKET_ERR_RESOURCE_UNKNOWN.
      if (running) {
        try {
          file.remove(list, name);
        } catch (err) {
          throw refused(err, `${kind} ${name} was not deleted`);
        }
      }
      return handler(op, args);
    });
    changes = run.catch(() => undefined);
    return run;
  };
}

/** Deletes the resource a failed write would leave unrecorded; had it gone already, nothing is left to undo. */
async function undo(handler: ControlHandler, op: ControlOp, name: string): Promise<void> {
  try {
    await handler(op, { name });
  } catch {
    // gone already
  }
}

/** The file's error, its code kept, saying what did not happen. */
function refused(err: unknown, what: string): Error {
  const error = asWicketError(err);
  const detail = error.message.startsWith(`${error.code}: `) ? error.message.slice(error.code.length + 2) : error.message;
  return wicketError(error.code, `${detail}; ${what}`, err);
}
