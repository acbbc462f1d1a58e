import type { Engine, JsonMessage } from '@berth/engine';
import { formatReference, parseReference } from '@berth/oci';
import type { Cli } from '../../cli/cli.js';
import { DockerConfig, registryKeyOf } from '../../cli/docker-config.js';
import { JsonMessageDisplay } from '../../format/json-message-display.js';

/** Renders a progress stream on one of the CLI's streams; resolves to the messages' `aux` values. */
export async function showProgress(cli: Cli, messages: AsyncIterable<JsonMessage>, options: { readonly to: 'stdout' | 'stderr'; readonly quiet?: boolean }): Promise<Record<string, unknown>[]> {
  const out = options.to === 'stdout' ? cli.io.stdout : cli.io.stderr;
  const display = new JsonMessageDisplay(out, { terminal: out.isTTY === true, width: out.columns ?? 80 });
  const aux: Record<string, unknown>[] = [];
  for await (const m of messages) {
    if (m.aux) aux.push(m.aux);
    if (!options.quiet && (m.status !== undefined || m.stream !== undefined)) display.show(m);
  }
  return aux;
}

/** Pulls an image with the credentials stored for its registry, showing docker's progress. */
export async function pullImage(
  cli: Cli,
  engine: Engine,
  reference: string,
  options: { readonly platform?: string; readonly quiet?: boolean; readonly to: 'stdout' | 'stderr'; readonly allTags?: boolean },
): Promise<void> {
  const parsed = parseReference(reference, { defaultTag: !options.allTags });
  const auth = await new DockerConfig(cli.settings.dockerConfigDir).credentials(registryKeyOf(reference));
  const fromImage = formatReference({ domain: parsed.domain, path: parsed.path });
  const tag = parsed.digest ?? parsed.tag ?? (options.allTags ? undefined : 'latest');
  await showProgress(
    cli,
    engine.pullImage({
      fromImage,
      signal: cli.signal,
      ...(tag !== undefined ? { tag } : {}),
      ...(options.allTags ? { allTags: true } : {}),
      ...(options.platform ? { platform: options.platform } : {}),
      ...(auth ? { auth } : {}),
    }),
    { to: options.to, ...(options.quiet !== undefined ? { quiet: options.quiet } : {}) },
  );
}
