// The release this build is, shown by `agent --version`, `relay --version`, `agent status --json`
// and both programs' metrics (wicket_build_info). A constant here rather than a read of
// package.json at run time: protocol/ does no I/O, and a test keeps the two equal.
export const WICKET_VERSION = '0.1.0';
