// Preloaded into a measured process (node --require): writes its resource usage to $BENCH_RUSAGE at exit.
const { writeFileSync } = require('node:fs');

process.on('exit', () => {
  const file = process.env.BENCH_RUSAGE;
  if (file) writeFileSync(file, JSON.stringify(process.resourceUsage()));
});
