// HTTP tests of `spn serve` against the fixture run: every endpoint, incremental metrics, partial
// files, and the ways a request could try to read outside the runs folder.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register } from '../../src/cli/serve.js';
import { SpnError } from '../../src/errors.js';
import { startServer, type RunningServer } from '../../src/serve/server.js';
import { readRunConfig } from '../../src/store/run.js';
import { FIXTURE, request, tempRuns } from './helpers.js';

let runs: string;
let srv: RunningServer;
let outside: string;
const get = (target: string, opts?: Parameters<typeof request>[2]) => request(srv.port, target, opts);

beforeAll(async () => {
  runs = tempRuns();
  // A folder outside the runs root holding a secret and a run-like folder, for symlink escapes.
  outside = fs.mkdtempSync(path.join(os.tmpdir(), 'spn-outside-'));
  fs.writeFileSync(path.join(outside, 'secret.json'), '{"secret":"do not serve"}\n');
  fs.mkdirSync(path.join(outside, 'run'));
  fs.writeFileSync(path.join(outside, 'run', 'config.json'), '{"secret":true}\n');
  srv = await startServer({ runsDir: runs, port: 0 });
});

afterAll(async () => {
  await srv.close();
  fs.rmSync(path.dirname(runs), { recursive: true, force: true });
  fs.rmSync(outside, { recursive: true, force: true });
});

describe('startServer', () => {
  it('binds to 127.0.0.1 on a free port and reports the URL', () => {
    expect(srv.url).toBe(`http://127.0.0.1:${srv.port}/`);
    expect(srv.port).toBeGreaterThan(0);
  });

  it('refuses a missing runs folder and a bad port with an ArgError', async () => {
    await expect(startServer({ runsDir: path.join(runs, 'nope'), port: 0 })).rejects.toThrow(/runs folder .*nope does not exist/);
    await expect(startServer({ runsDir: runs, port: 70000 })).rejects.toBeInstanceOf(SpnError);
  });
});

describe('static page', () => {
  it('serves the app, its script, its stylesheet and Chart.js', async () => {
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('/app.js');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect((await get('/app.js')).headers['content-type']).toMatch(/^text\/javascript/);
    expect((await get('/style.css')).headers['content-type']).toMatch(/^text\/css/);
    const chart = await get('/vendor/chart.js');
    expect(chart.status).toBe(200);
    expect(chart.text).toContain('Chart');
  });

  it('answers unknown paths with 404', async () => {
    expect((await get('/nope')).status).toBe(404);
    expect((await get('/api')).status).toBe(404);
    expect((await get('/api/nope')).status).toBe(404);
    expect((await get('/api/runs/run-fixture/nope')).status).toBe(404);
  });
});

describe('GET /api/runs', () => {
  it('lists the fixture run with its state, step and latest numbers', async () => {
    const res = await get('/api/runs');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toMatch(/no-store/);
    const run = res.json().runs.find((r: { name: string }) => r.name === 'run-fixture');
    expect(run).toEqual({
      name: 'run-fixture',
      state: 'running',
      step: 1000,
      total_steps: 2000,
      train_loss_bpd: 3.34278,
      test_bpd: 3.36759,
      eval_bpd: 3.37695,
      preset: 'fmnist-cpu',
      stage: 'full',
      updated: '2025-01-15T10:03:38.000Z',
    });
  });

  it('lists folders missing files, newest first, and skips unsafe names and files', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'spn-list-'));
    try {
      fs.cpSync(FIXTURE, path.join(base, 'old-run'), { recursive: true });
      fs.mkdirSync(path.join(base, 'empty-run'));
      fs.mkdirSync(path.join(base, '.hidden'));
      fs.mkdirSync(path.join(base, 'bad name'));
      fs.writeFileSync(path.join(base, 'notes.txt'), 'not a run');
      fs.symlinkSync(path.join(outside, 'run'), path.join(base, 'escaped'));
      const other = await startServer({ runsDir: base, port: 0 });
      try {
        const res = await request(other.port, '/api/runs');
        const listed = res.json().runs;
        expect(listed.map((r: { name: string }) => r.name)).toEqual(['empty-run', 'old-run']);
        expect(listed[0]).toMatchObject({ name: 'empty-run', state: null, step: null, train_loss_bpd: null, test_bpd: null, eval_bpd: null });
      } finally {
        await other.close();
      }
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});

describe('GET /api/runs/:name', () => {
  it('returns config, status, eval and the sample files', async () => {
    const res = await get('/api/runs/run-fixture');
    expect(res.status).toBe(200);
    const d = res.json();
    expect(d.config).toEqual(readRunConfig(FIXTURE)); // the fixture is a valid run config
    expect(d.config).toMatchObject({ preset: 'fmnist-cpu', data: 'fashion-mnist', model: { height: 28, width: 28, channels: 1, scale: 4 } });
    expect(d.status).toMatchObject({ state: 'running', step: 1000, total_steps: 2000 });
    expect(d.eval).toMatchObject({ bpd: 3.37695, images: 10000, split: 'test', step: 1000 });
    expect(d.eval.per_slice_bpd).toHaveLength(16); // S = 4
    expect(d.problems).toEqual([]);
    expect(d.metrics.lines).toBe(105);
    expect(d.metrics.last_train).toMatchObject({ kind: 'train', step: 1000 });
    expect(d.metrics.last_test).toMatchObject({ kind: 'test', step: 1000 });
    expect(d.samples.latest.path).toBe('samples/latest.png');
    expect(d.samples.animation.path).toBe('samples/frames/animation.gif');
    expect(d.samples.frames.map((f: { path: string }) => f.path)).toEqual(Array.from({ length: 16 }, (_, i) => `samples/frames/frame-${String(i).padStart(3, '0')}.png`));
    expect(d.samples.grids.map((f: { path: string }) => f.path)).toEqual(['samples/step-00000270.png', 'samples/step-00000560.png', 'samples/step-00000830.png']);
  });

  it('answers an unknown or badly named run with 404', async () => {
    expect((await get('/api/runs/no-such-run')).status).toBe(404);
    expect((await get('/api/runs/no-such-run/metrics')).status).toBe(404);
    expect((await get('/api/runs/no-such-run/files/config.json')).status).toBe(404);
    expect((await get('/api/runs/bad%20name')).status).toBe(404);
    expect((await get('/api/runs/.git')).status).toBe(404);
  });

  it('finds the animation at samples/animation.gif when samples/frames/ has none', async () => {
    const dir = path.join(runs, 'gif-beside-grid');
    fs.mkdirSync(path.join(dir, 'samples'), { recursive: true });
    fs.copyFileSync(path.join(FIXTURE, 'samples', 'frames', 'animation.gif'), path.join(dir, 'samples', 'animation.gif'));
    expect((await get('/api/runs/gif-beside-grid')).json().samples.animation.path).toBe('samples/animation.gif');
  });

  it('still answers for a run whose files are missing or half-written', async () => {
    const dir = path.join(runs, 'partial');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'status.json'), '{"state":"runn');
    const d = (await get('/api/runs/partial')).json();
    expect(d).toMatchObject({ name: 'partial', config: null, status: null, eval: null, metrics: { lines: 0, last_train: null, last_test: null } });
    expect(d.problems).toHaveLength(1);
    expect(d.problems[0]).toMatch(/^status\.json: not valid JSON/);
    expect(d.samples).toEqual({ latest: null, animation: null, frames: [], grids: [] });
    expect((await get('/api/runs/partial/metrics')).json()).toEqual({ records: [], next: 0, more: false, reset: false });
    expect((await get('/api/runs')).json().runs.some((r: { name: string }) => r.name === 'partial')).toBe(true);
  });
});

describe('GET /api/runs/:name/metrics', () => {
  it('returns every record from line 0 and the next line to ask for', async () => {
    const page = (await get('/api/runs/run-fixture/metrics')).json();
    expect(page.records).toHaveLength(105);
    expect(page.records.filter((r: { kind: string }) => r.kind === 'train')).toHaveLength(100);
    expect(page.records.filter((r: { kind: string }) => r.kind === 'test')).toHaveLength(5);
    expect(page.records[0]).toEqual({ kind: 'train', step: 10, time_s: expect.any(Number), loss_bpd: expect.any(Number), subpixels_per_s: expect.any(Number), lr: 0.0003 });
    expect(page.records.at(-1)).toEqual({ kind: 'test', step: 1000, time_s: expect.any(Number), bpd: expect.any(Number), images: 400 });
    expect(page).toMatchObject({ next: 105, more: false, reset: false });
  });

  it('returns only the lines after `since`, in pages of `limit`', async () => {
    const tail = (await get('/api/runs/run-fixture/metrics?since=102')).json();
    expect(tail.records.map((r: { step: number }) => r.step)).toEqual([990, 1000, 1000]);
    expect(tail.next).toBe(105);
    expect((await get('/api/runs/run-fixture/metrics?since=105')).json()).toEqual({ records: [], next: 105, more: false, reset: false });
    const first = (await get('/api/runs/run-fixture/metrics?since=0&limit=10')).json();
    expect(first.records).toHaveLength(10);
    expect(first).toMatchObject({ next: 10, more: true });
  });

  it('asks the client to start over when `since` is past the end', async () => {
    expect((await get('/api/runs/run-fixture/metrics?since=999')).json()).toEqual({ records: [], next: 0, more: false, reset: true });
  });

  it('refuses a malformed `since` or `limit`', async () => {
    for (const q of ['since=abc', 'since=-1', 'since=1.5', 'limit=0', 'limit=99999999']) {
      const res = await get(`/api/runs/run-fixture/metrics?${q}`);
      expect(res.status, q).toBe(400);
    }
  });

  it('follows appends, skips a truncated last line until it is complete, and skips bad lines', async () => {
    const dir = path.join(runs, 'growing');
    fs.mkdirSync(dir);
    const file = path.join(dir, 'metrics.jsonl');
    const line = (step: number) => JSON.stringify({ kind: 'train', step, time_s: step, loss_bpd: 4, subpixels_per_s: 1000, lr: 1e-4 }) + '\n';
    fs.writeFileSync(file, line(1) + line(2));
    expect((await get('/api/runs/growing/metrics')).json()).toMatchObject({ next: 2 });

    fs.appendFileSync(file, '{"kind":"train","step":3,"loss');
    const half = (await get('/api/runs/growing/metrics?since=2')).json();
    expect(half).toMatchObject({ records: [], next: 2 });
    expect((await get('/api/runs')).json().runs.find((r: { name: string }) => r.name === 'growing').step).toBe(2);

    fs.appendFileSync(file, '_bpd":3.5}\nnot json\n' + line(4).trimEnd());
    const rest = (await get('/api/runs/growing/metrics?since=2')).json();
    expect(rest.records.map((r: { step: number }) => r.step)).toEqual([3, 4]); // "not json" counted, not returned
    expect(rest.next).toBe(5);

    fs.appendFileSync(file, '\n' + line(5));
    expect((await get(`/api/runs/growing/metrics?since=${rest.next}`)).json().records.map((r: { step: number }) => r.step)).toEqual([5]);

    // A rewritten (shorter) file: an old `since` now asks the client to reset.
    fs.writeFileSync(file, line(1));
    expect((await get('/api/runs/growing/metrics?since=6')).json()).toMatchObject({ reset: true, next: 0 });
    expect((await get('/api/runs/growing/metrics')).json().records).toHaveLength(1);
  });
});

describe('GET /api/runs/:name/files/<path>', () => {
  it('serves PNG, GIF and JSON with their content types and no caching', async () => {
    const png = await get('/api/runs/run-fixture/files/samples/latest.png');
    expect(png.status).toBe(200);
    expect(png.headers['content-type']).toBe('image/png');
    expect(png.headers['cache-control']).toMatch(/no-store/);
    expect(png.body.equals(fs.readFileSync(path.join(FIXTURE, 'samples', 'latest.png')))).toBe(true);

    const gif = await get('/api/runs/run-fixture/files/samples/frames/animation.gif');
    expect(gif.headers['content-type']).toBe('image/gif');
    expect(gif.body.subarray(0, 6).toString('latin1')).toBe('GIF89a');

    const frame = await get('/api/runs/run-fixture/files/samples/frames/frame-002.png');
    expect(frame.status).toBe(200);

    const cfg = await get('/api/runs/run-fixture/files/config.json');
    expect(cfg.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(cfg.text).preset).toBe('fmnist-cpu');

    const head = await get('/api/runs/run-fixture/files/samples/latest.png', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(png.body.length));
    expect(head.body.length).toBe(0);
  });

  it('accepts percent-encoded names that decode to plain ones', async () => {
    const res = await get('/api/runs/run%2Dfixture/files/samples/%6Catest.png');
    expect(res.status).toBe(200);
  });

  it('answers missing files with 404 and refuses other types and hidden files with 403', async () => {
    expect((await get('/api/runs/run-fixture/files/samples/nope.png')).status).toBe(404);
    expect((await get('/api/runs/run-fixture/files/samples')).status).toBe(403);
    expect((await get('/api/runs/run-fixture/files')).status).toBe(404);
    fs.mkdirSync(path.join(runs, 'run-fixture', 'checkpoints'), { recursive: true });
    fs.writeFileSync(path.join(runs, 'run-fixture', 'checkpoints', 'best.safetensors'), 'weights');
    fs.writeFileSync(path.join(runs, 'run-fixture', '.status.json.1.tmp.json'), '{}');
    expect((await get('/api/runs/run-fixture/files/checkpoints/best.safetensors')).status).toBe(403);
    expect((await get('/api/runs/run-fixture/files/.status.json.1.tmp.json')).status).toBe(403);
  });
});

describe('requests that try to leave the runs folder', () => {
  const attempts = [
    '/api/runs/../../etc/passwd',
    '/api/runs/run-fixture/files/../../../etc/passwd',
    '/api/runs/run-fixture/files/samples/../../../../etc/passwd',
    '/api/runs/%2e%2e/%2e%2e/etc/passwd',
    '/api/runs/run-fixture/files/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '/api/runs/run-fixture/files/%2E%2E/%2E%2E/etc/passwd',
    '/api/runs/run-fixture/files/..%2f..%2f..%2fetc%2fpasswd',
    '/api/runs/run-fixture/files/%2fetc%2fpasswd',
    '/api/runs/run-fixture/files//etc/passwd',
    '/api/runs/run-fixture/files/..\\..\\..\\etc\\passwd',
    '/api/runs/run-fixture/files/%5c..%5c..%5cetc%5cpasswd',
    '/api/runs/run-fixture/files/config.json%00.png',
    '/api/runs/run-fixture/files/./config.json',
  ];
  for (const target of attempts) {
    it(`refuses ${target}`, async () => {
      const res = await get(target);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.text).not.toContain('root:');
    });
  }

  it('refuses bad percent-encoding with 400', async () => {
    for (const target of ['/api/runs/%zz', '/api/runs/run-fixture/files/%E0%A4%A', '/api/runs/run-fixture/files/samples/%']) {
      const res = await get(target);
      expect(res.status, target).toBe(400);
      expect(res.json().error).toMatch(/percent-encoding/);
    }
  });

  it('refuses a symlink inside a run that points outside the runs folder', async () => {
    const link = path.join(runs, 'run-fixture', 'samples', 'leak.json');
    fs.symlinkSync(path.join(outside, 'secret.json'), link);
    const res = await get('/api/runs/run-fixture/files/samples/leak.json');
    expect(res.status).toBe(403);
    expect(res.text).not.toContain('do not serve');
    fs.symlinkSync(outside, path.join(runs, 'run-fixture', 'samples', 'outdir'));
    expect((await get('/api/runs/run-fixture/files/samples/outdir/secret.json')).status).toBe(403);
  });

  it('treats a run folder symlinked to outside the root as unknown', async () => {
    fs.symlinkSync(path.join(outside, 'run'), path.join(runs, 'escaped'));
    expect((await get('/api/runs/escaped')).status).toBe(404);
    const res = await get('/api/runs/escaped/files/config.json');
    expect(res.status).toBe(404);
    expect(res.text).not.toContain('secret');
    expect((await get('/api/runs')).json().runs.some((r: { name: string }) => r.name === 'escaped')).toBe(false);
  });

  it('allows a symlink that stays inside the runs folder', async () => {
    fs.symlinkSync(path.join(runs, 'run-fixture', 'samples', 'latest.png'), path.join(runs, 'run-fixture', 'samples', 'alias.png'));
    expect((await get('/api/runs/run-fixture/files/samples/alias.png')).status).toBe(200);
  });
});

describe('methods and hosts', () => {
  it('answers anything but GET and HEAD with 405', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      for (const target of ['/', '/api/runs', '/api/runs/run-fixture/files/config.json']) {
        const res = await get(target, { method });
        expect(res.status, `${method} ${target}`).toBe(405);
        expect(res.headers.allow).toBe('GET, HEAD');
      }
    }
  });

  it('refuses a foreign Host header on a loopback bind (DNS rebinding)', async () => {
    expect((await get('/api/runs', { headers: { Host: 'evil.example:80' } })).status).toBe(403);
    expect((await get('/api/runs', { headers: { Host: `localhost:${srv.port}` } })).status).toBe(200);
  });
});

describe('spn serve command', () => {
  it('rejects a non-numeric port and a missing runs folder', async () => {
    const program = new Command().exitOverride();
    register(program);
    await expect(program.parseAsync(['node', 'spn', 'serve', runs, '--port', 'http'])).rejects.toThrow(/--port must be a whole number/);
    await expect(program.parseAsync(['node', 'spn', 'serve', path.join(runs, 'missing'), '--port', '0'])).rejects.toThrow(/does not exist/);
  });
});
