// Preloaded into a measured process (node --expose-gc --require): every 250 ms, a full GC and then the
// heap in use and the array buffers (typed arrays, stream chunks) that survived it; the largest of each
// go to $BENCH_LIVE_HEAP at exit. What is live, as opposed to peak RSS, which includes the garbage V8
// lets pile up before collecting.
const { writeFileSync } = require('node:fs');

let heap = 0;
let buffers = 0;
function sample() {
  global.gc();
  const usage = process.memoryUsage();
  heap = Math.max(heap, usage.heapUsed);
  buffers = Math.max(buffers, usage.arrayBuffers);
}
setInterval(sample, 250).unref();
process.on('exit', () => {
  sample();
  if (process.env.BENCH_LIVE_HEAP) writeFileSync(process.env.BENCH_LIVE_HEAP, JSON.stringify({ heap, buffers }));
});
