// placeholder: the relay CLI root (owned by the relay engineer)
console.error('relay: not built yet');
process.exit(2);
