// Times /dashboard in headless Debian chromium (playwright-core from web/, launched as
// tests/browser/drive.mjs does): from navigation to the page filled by its first
// GET /dashboard/data (data-ready="true"). Prints {"page_ms": N, "page_dcl_ms": N}.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../web/package.json'));
const { chromium } = require('playwright-core');

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  const t0 = performance.now();
  await page.goto(process.argv[2], { waitUntil: 'domcontentloaded' });
  const dcl = performance.now() - t0;
  await page.waitForSelector('#dashboard[data-ready="true"]', { timeout: 30000 });
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ page_ms: Math.round(ms), page_dcl_ms: Math.round(dcl) }));
} finally {
  await browser.close();
}
