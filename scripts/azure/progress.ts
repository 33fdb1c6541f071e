// Operator-facing progress on stderr (stdout carries only the demo answer). Never pass a ticket or
// key here: lines name resources and states, nothing else.

export type ProgressGroup = 'relay' | 'ai-corp' | 'health-corp' | 'up' | 'cleanup';

export interface Progress {
  say(group: ProgressGroup, text: string): void;
}

export function stderrProgress(out: NodeJS.WritableStream = process.stderr): Progress {
  const started = Date.now();
  return {
    say(group, text) {
      const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
      out.write(`${seconds}s [${group}] ${text}\n`);
    },
  };
}
