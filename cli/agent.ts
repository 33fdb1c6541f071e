// placeholder: the agent CLI root (owned by the agent-CLI engineer)
console.error('agent: not built yet');
process.exit(2);
