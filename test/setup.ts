// Loaded by mocha before every spec (see .mocharc.json): nothing global to set up yet
// beyond making unhandled rejections fail loudly instead of hiding behind a green run.
process.on('unhandledRejection', (reason) => {
  console.error('unhandled rejection in tests:', reason);
  process.exitCode = 1;
});
