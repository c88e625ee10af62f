// `spn recipe` (definition in recipe.ts): lists the recipes, or prints one recipe's `spn train`
// commands and writes its pipeline file (store/recipes.ts).
import { RECIPES, getRecipe, planRecipe, shellWord, writeRecipePipeline } from '../store/recipes.js';
import type { RecipeCommandOptions } from './recipe.js';

export function run(name: string | undefined, o: RecipeCommandOptions): void {
  const write = (s: string) => process.stdout.write(s);
  if (name === undefined) {
    const list = Object.values(RECIPES);
    if (o.json) return void write(JSON.stringify(list, null, 2) + '\n');
    for (const r of list) write(`${r.name.padEnd(18)} ${r.shape.join('×')} ${r.bits}-bit, ${r.stages.length} stage${r.stages.length > 1 ? 's' : ''}: ${r.description}\n`);
    write('\n`spn recipe <name> [--data SPEC] [--out DIR]` prints the commands of a recipe and writes its pipeline file\n');
    return;
  }
  const plan = planRecipe(getRecipe(name), { data: o.data, out: o.out, device: o.device, minutes: o.minutes });
  const file = writeRecipePipeline(plan);
  const line = (argv: string[]) => ['npx', 'spn', ...argv].map(shellWord).join(' ');
  if (o.json) {
    write(JSON.stringify({ recipe: plan.recipe.name, pipeline: file, stages: plan.commands.map((c) => ({ name: c.stage.name, run: c.dir, what: c.stage.what, argv: c.argv, command: line(c.argv) })), paper: plan.recipe.paper, ours: plan.recipe.ours }, null, 2) + '\n');
    return;
  }
  const r = plan.recipe;
  write(`# ${r.name}: ${r.description}\n# paper: ${r.paper}\n# ours: ${r.ours}\n`);
  plan.commands.forEach((c, i) => write(`\n# stage ${i + 1} (${c.stage.stage}): ${c.stage.what}\n${line(c.argv)}\n`));
  write(`\n# wrote ${file}; each stage trains for --minutes (a day unless spn recipe --minutes M; spn train --resume --out <run> --minutes M continues one). After training:\n`);
  write(`npx spn eval --pipeline ${shellWord(file)}\nnpx spn sample --pipeline ${shellWord(file)} --n 4 --out ${shellWord(plan.out + '/samples.png')}\n`);
}
