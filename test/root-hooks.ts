// Mocha exits 0 when the event loop empties in the middle of a test (one waiting for a promise
// that nothing keeps alive, as a call that never settles would): make that a failure.
let finished = false;

export const mochaHooks = {
  afterAll(): void {
    finished = true;
  },
};

process.on('exit', () => {
  if (finished) return;
  process.stderr.write('\nThe suite ended before its last test did: a test waited for something that never came.\n');
  process.exitCode = 1;
});
