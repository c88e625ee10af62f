// End-to-end: the dashboard in headless Chromium against the fixture run. Checks that the curves
// render, the sample images load, new metrics lines appear without a reload, and the page logs
// no errors (a CSP violation would show up here). Saves test-artifacts/dashboard.png.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/serve/server.js';
import { tempRuns } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(`browser.test.ts: skipped, ${CHROMIUM} not found (install it with: apt-get install -y --no-install-recommends chromium)`);
}
const ARTIFACTS = path.join(process.cwd(), 'test-artifacts');

describe.skipIf(!hasChromium)(`dashboard in headless Chromium (${CHROMIUM})`, () => {
  let runs: string;
  let srv: RunningServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    runs = tempRuns();
    srv = await startServer({ runsDir: runs, port: 0 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`console ${msg.type()}: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()}`));
    page.on('response', (res) => {
      if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`);
    });
    await page.goto(srv.url, { waitUntil: 'load' });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await srv?.close();
    if (runs) fs.rmSync(path.dirname(runs), { recursive: true, force: true });
  });

  it('selects the newest run and draws the bits/dim and throughput curves', async () => {
    await page.waitForFunction(() => {
      const d = (window as unknown as { spnDashboard?: { charts: Record<string, { data: { datasets: { data: unknown[] }[] } }> } }).spnDashboard;
      return d !== undefined && d.charts.bpd.data.datasets[0]!.data.length === 100 && d.charts.bpd.data.datasets[2]!.data.length === 5;
    }, undefined, { timeout: 20_000 });
    expect(page.url()).toContain('#run=run-fixture');
    expect(await page.textContent('#run-name')).toBe('run-fixture');
    expect(await page.textContent('#run-state')).toBe('running');
    expect(await page.textContent('#stat-eval')).toBe('3.377');

    // Chart.js owns the canvases and has painted something on them.
    const painted = await page.evaluate(() => {
      const count = (id: string) => {
        const canvas = document.getElementById(id) as HTMLCanvasElement;
        const chart = (window as unknown as { Chart: { getChart(c: HTMLCanvasElement): unknown } }).Chart.getChart(canvas);
        const px = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i]! > 0) n++;
        return { chart: chart !== undefined, width: canvas.width, painted: n };
      };
      return { bpd: count('bpd-chart'), tput: count('tput-chart'), slice: count('slice-chart') };
    });
    for (const [name, c] of Object.entries(painted)) {
      expect(c.chart, name).toBe(true);
      expect(c.width, name).toBeGreaterThan(100);
      expect(c.painted, name).toBeGreaterThan(1000);
    }
  });

  it('loads the sample grid, the animation and every frame', async () => {
    await page.waitForFunction(() => {
      const imgs = [document.getElementById('latest'), document.getElementById('animation'), ...document.querySelectorAll('#frames img')] as HTMLImageElement[];
      return imgs.length === 18 && imgs.every((img) => img.complete && img.naturalWidth > 0);
    }, undefined, { timeout: 20_000 });
    const sizes = await page.evaluate(() => ({
      latest: (document.getElementById('latest') as HTMLImageElement).naturalWidth,
      animation: (document.getElementById('animation') as HTMLImageElement).naturalWidth,
      frames: Array.from(document.querySelectorAll('#frames img')).map((img) => (img as HTMLImageElement).naturalWidth),
    }));
    // latest.png: 16 images of 28×28 at ×3 in a 4×4 grid; the frames and GIF: 4 images, one frame per slice (S = 4).
    expect(sizes).toEqual({ latest: 346, animation: 174, frames: Array(16).fill(174) });
  });

  it('shows the config as tables', async () => {
    const captions = await page.$$eval('#config-tables caption', (els) => els.map((e) => e.textContent));
    expect(captions).toEqual(['run', 'data', 'model', 'train']);
    const rows = await page.$$eval('#config-tables table', (tables) => Object.fromEntries(tables.map((t) => [
      t.querySelector('caption')!.textContent,
      Array.from(t.querySelectorAll('tr')).map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent)),
    ])));
    expect(rows.data).toEqual([['data', 'fashion-mnist'], ['dataBits', '8'], ['subsample', '1'], ['size', '–'], ['crop', '–']]);
    expect(rows.run!.map(([k]) => k)).toEqual(['name', 'preset', 'seed', 'device', 'stage', 'minutes', 'steps', 'created']);
    expect(rows.model).toContainEqual(['scale', '4']);
    expect(rows.train).toContainEqual(['evalEverySec', '40']);
    expect(await page.textContent('#config-tables')).not.toContain('undefined');
    expect(await page.textContent('#run-sub')).toMatch(/^fmnist-cpu · stage full · fashion-mnist · cpu · updated /);
  });

  it('picks up new metrics lines and status while the run trains', async () => {
    const dir = path.join(runs, 'run-fixture');
    const extra = [1010, 1020, 1030].map((step) => JSON.stringify({ kind: 'train', step, time_s: Math.round(step * 2.2) / 10, loss_bpd: 3.3, subpixels_per_s: 3900, lr: 1.6e-3 }));
    fs.appendFileSync(path.join(dir, 'metrics.jsonl'), extra.join('\n') + '\n');
    const status = JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'status.json'), JSON.stringify({ ...status, step: 1030, updated: new Date().toISOString() }));
    await page.waitForFunction(() => {
      const d = (window as unknown as { spnDashboard: { state: { train: unknown[] } } }).spnDashboard;
      return d.state.train.length === 103 && document.getElementById('stat-step')!.textContent === '1,030/ 2,000';
    }, undefined, { timeout: 10_000 });
  });

  it('switches the x axis to time and pins a single frame', async () => {
    await page.selectOption('#x-axis', 'time');
    const xs = await page.evaluate(() => {
      const chart = (window as unknown as { spnDashboard: { charts: { bpd: { options: { scales: { x: { title: { text: string } } } }; data: { datasets: { data: { x: number }[] }[] } } } } }).spnDashboard.charts.bpd;
      return { title: chart.options.scales.x.title.text, lastX: chart.data.datasets[0]!.data.at(-1)!.x };
    });
    expect(xs).toEqual({ title: 'time', lastX: 226.6 });
    await page.selectOption('#x-axis', 'step');

    await page.click('#frames button:nth-child(2)');
    expect(await page.getAttribute('#animation', 'src')).toMatch(/\/files\/samples\/frames\/frame-001\.png\?v=/);
    await page.click('#play');
    expect(await page.getAttribute('#animation', 'src')).toMatch(/\/files\/samples\/frames\/animation\.gif\?v=/);
  });

  it('saves a screenshot and logged no errors', async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    expect(fs.statSync(path.join(ARTIFACTS, 'dashboard.png')).size).toBeGreaterThan(10_000);
    expect(problems).toEqual([]);
  });
});
