// Screenshots the dashboard over a runs folder (for the README): node scripts/screenshot.mjs <runs-dir> <out.png> [run-name]
// Needs the compiled project (npm run build) and Debian's chromium.
import { chromium } from 'playwright-core';
import { startServer } from '../dist/src/serve/server.js';

const [runsDir = 'runs', out = 'docs/images/dashboard.png', run] = process.argv.slice(2);
const srv = await startServer({ runsDir, port: 0 });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.goto(srv.url + (run ? `#run=${encodeURIComponent(run)}` : ''), { waitUntil: 'load' });
  await page.waitForTimeout(4000); // charts and images load, one poll cycle passes
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await srv.close();
}
