import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

// A resolve hook that prints every URL it resolves, one per line, prefixed so it can be found.
const hooks = `export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  process.stderr.write('berth-resolved ' + result.url + '\\n');
  return result;
}`;
const register = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));`;

/**
 * The module URLs a fresh Node process resolves while it imports `specifier` (as Node runs it:
 * the package's built `dist/`) and evaluates `use` on the module, e.g. `m.driver.flags.length`.
 * Lets a test check that importing a driver for its flags loads no cloud SDK.
 */
export async function modulesLoadedBy(specifier: string, use: string, cwd: string): Promise<string[]> {
  const script = `const m = await import(${JSON.stringify(specifier)}); void (${use});`;
  const { stderr } = await run(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', script], { cwd, maxBuffer: 64 << 20 });
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('berth-resolved '))
    .map((line) => line.slice('berth-resolved '.length));
}
