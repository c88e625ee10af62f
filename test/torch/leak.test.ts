// A long training run must hold memory flat: every tensor made in a step is freed by its tidy
// scope, the optimizer state is created once, and nothing grows in native memory.
import { expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { AdamW, clipGradNorm } from '../../src/torch/optim/index.js';

torch.setNumThreads(1); // small ops: threading costs more than it saves on a shared 2-core machine

it('500 training steps of an MLP keep live tensors flat and RSS nearly flat', async () => {
  torch.manualSeed(0);
  const [n, dIn, dHidden, classes] = [64, 32, 128, 10];
  const param = (shape: number[], scale: number) => torch.keep(torch.tidy(() => torch.randn(shape).mul(scale)).requiresGrad_());
  const params = [
    { name: 'fc1.weight', param: param([dHidden, dIn], 1 / Math.sqrt(dIn)) },
    { name: 'fc1.bias', param: torch.keep(torch.zeros([dHidden], { requiresGrad: true })) },
    { name: 'fc2.weight', param: param([classes, dHidden], 1 / Math.sqrt(dHidden)) },
    { name: 'fc2.bias', param: torch.keep(torch.zeros([classes], { requiresGrad: true })) },
  ];
  const [w1, b1, w2, b2] = params.map((p) => p.param) as [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor];
  const opt = new AdamW(params, { lr: 1e-3, noDecay: (name) => name.endsWith('.bias') });
  const x = torch.keep(torch.randn([n, dIn]));
  const y = torch.keep(torch.randint(0, classes, [n]));

  const losses: number[] = [];
  const step = () =>
    torch.tidy(() => {
      const logits = torch.linear(torch.gelu(torch.linear(x, w1, b1)), w2, b2);
      const loss = torch.crossEntropy(logits, y);
      loss.backward();
      clipGradNorm(params, 1.0);
      opt.step();
      opt.zeroGrad();
      losses.push(loss.item());
    });

  step();
  const live = torch.liveTensors();
  let rss100 = 0;
  for (let i = 2; i <= 500; i++) {
    step();
    // Disposed handles free their tensors at once, but the small native boxes holding them go
    // only when V8 finalizes the handles, which needs the event loop to turn (as a trainer's
    // awaits for logging and checkpoints do); a loop that never yields grows by ~200 B per op.
    if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    if (i === 100) rss100 = process.memoryUsage().rss;
    if (i % 100 === 0) expect(torch.liveTensors()).toBe(live);
  }
  const rss500 = process.memoryUsage().rss;
  expect(torch.liveTensors()).toBe(live);
  if (process.env.SPN_LEAK_VERBOSE) console.log(`rss growth steps 100..500: ${((rss500 - rss100) / 2 ** 20).toFixed(2)} MB; loss ${losses[0]} -> ${losses[499]}`);
  expect(rss500 - rss100).toBeLessThan(30 * 2 ** 20);
  expect(losses[499]!).toBeLessThan(losses[0]!); // it actually trains (memorizes the batch)

  opt.dispose();
  for (const t of [w1, b1, w2, b2, x, y]) t.dispose();
  expect(torch.liveTensors()).toBe(live - 6 - 8); // 6 tensors above, 8 moment estimates
});
