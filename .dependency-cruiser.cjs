// The import-graph rules of DESIGN.md "Layout", checked by test/architecture.test.ts (part of
// `npm test`). To see the graph's violations by hand:
//
//   npx depcruise protocol agent relay cli scripts examples --config .dependency-cruiser.cjs
//
// Paths in the rules are relative to the repo root, as dependency-cruiser resolves them. Core
// modules resolve to their bare name ("fs", "node:fs" → "fs"), npm packages to node_modules/<name>/….

/** Source folders, each a layer of DESIGN.md "Layout". */
const SOURCE = '^(protocol|agent|relay|cli|scripts|examples)/';

/** What protocol/ may import besides itself: pure computation only (DESIGN.md: "pure, no I/O").
 *  Today it uses node:crypto, node:events, node:util and sodium-native (the AEAD; README.md "Why
 *  libsodium for the AEAD"); node:buffer is pure too. Add to this list only things that do no I/O. */
const PROTOCOL_MAY_IMPORT = [
  '^(node:)?(crypto|events|buffer|util)$',
  '^node_modules/sodium-native/',
];

/** Modules that do I/O (files, sockets, processes, threads, logging sinks, databases). */
const IO_MODULES = [
  '^(node:)?(fs|fs/promises|net|tls|http|https|http2|dgram|child_process|worker_threads|cluster|readline|dns|dns/promises)$',
  '^node_modules/(ws|better-sqlite3|pino|pino-pretty|undici)/',
];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      // The project wants no cycles at all, type-only ones included (tsPreCompilationDeps below):
      // a cycle, even through `import type`, means two modules cannot be understood, tested or
      // moved apart, and a runtime cycle hides in ESM as an undefined binding at load time.
      name: 'no-cycles',
      severity: 'error',
      comment: 'Import cycle (type-only imports count): break it by moving the shared piece into its own module.',
      from: { path: SOURCE },
      to: { circular: true },
    },
    {
      // protocol/ is the layer everything else builds on; it must not know about the programs
      // that use it (DESIGN.md: "protocol/ imports nothing from agent/, relay/ or cli/").
      // This also covers rule "protocol/ never imports cli/, scripts/ or test/".
      name: 'protocol-is-the-bottom-layer',
      severity: 'error',
      comment: 'protocol/ imports nothing from agent/, relay/, cli/, scripts/, examples/ or test/.',
      from: { path: '^protocol/' },
      to: { path: '^(agent|relay|cli|scripts|examples|test)/' },
    },
    {
      // protocol/ is "pure, no I/O": codecs and state machines that take bytes and return bytes,
      // so they can be fuzzed, run on vectors and reused by both agent/ and relay/.
      name: 'protocol-does-no-io',
      severity: 'error',
      comment: 'protocol/ is pure: no file, socket, process, thread, database or logger modules.',
      from: { path: '^protocol/' },
      to: { path: IO_MODULES },
    },
    {
      // An allowlist rather than only a denylist, so that a new dependency of protocol/ is a
      // decision someone makes here, not something that slips in.
      name: 'protocol-imports-only-allowed-modules',
      severity: 'error',
      comment: `protocol/ may import only protocol/ and: ${PROTOCOL_MAY_IMPORT.join(', ')} (see .dependency-cruiser.cjs).`,
      from: { path: '^protocol/' },
      to: {
        // Everything the two rules above already report is left out, so one import is reported once.
        pathNot: ['^protocol/', '^(agent|relay|cli|scripts|examples|test)/', ...PROTOCOL_MAY_IMPORT, ...IO_MODULES],
      },
    },
    {
      // The agent and the relay are separate programs on separate machines that share only the
      // wire protocol (protocol/); an import between them would couple their releases and leak
      // relay-side code (the authority, the store) into every agent, or the other way round.
      name: 'agent-and-relay-stay-apart',
      severity: 'error',
      comment: 'agent/ and relay/ never import each other; what they share belongs in protocol/.',
      from: { path: '^agent/' },
      to: { path: '^relay/' },
    },
    {
      name: 'relay-and-agent-stay-apart',
      severity: 'error',
      comment: 'relay/ and agent/ never import each other; what they share belongs in protocol/.',
      from: { path: '^relay/' },
      to: { path: '^agent/' },
    },
    {
      // Only cli/ and scripts/ wire things together (DESIGN.md); the libraries below them must
      // not reach up into the programs, the tooling or the tests.
      name: 'libraries-do-not-import-programs-or-tests',
      severity: 'error',
      comment: 'agent/ and relay/ import nothing from cli/, scripts/ or test/ (protocol/ is covered above).',
      from: { path: '^(agent|relay)/' },
      to: { path: '^(cli|scripts|test)/' },
    },
    {
      // A guard for the rules above: an import the resolver cannot follow is an edge missing from
      // the graph, and a cycle or a layer breach through it would go unseen.
      name: 'relative-imports-resolve',
      severity: 'error',
      comment: 'A relative import that does not resolve: the graph would miss this edge.',
      from: { path: SOURCE },
      to: { path: '^\\.\\.?/', couldNotResolve: true },
    },
  ],
  options: {
    // Follow npm packages only to name them, never into them.
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    // Count `import type` and type-only re-exports as dependencies: the project wants no cycles
    // at all, type-only ones included.
    tsPreCompilationDeps: true,
    // Resolve the way tsc does (NodeNext: "./x.js" is ./x.ts).
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types'],
    },
    moduleSystems: ['es6', 'cjs'],
  },
};
