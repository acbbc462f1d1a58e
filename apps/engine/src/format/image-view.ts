import type { HistoryResponseItem, ImageSummary } from '@berth/engine';
import { ellipsis, goTimeString, shortId } from './container-view.js';
import type { View } from './list-format.js';
import { humanDuration, humanSize } from './units.js';

/** One row of `images`: an image under one repository and tag (or `<none>`). */
export interface ImageRow {
  readonly image: ImageSummary;
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
}

function splitRepo(ref: string): [string, string] {
  const at = ref.indexOf('@');
  if (at >= 0) return [ref.slice(0, at), ref.slice(at + 1)];
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, '<none>'];
}

/** docker's rows per image: one per tag (with the repository's digest when it has exactly one), one per untagged digest, or `<none>`. */
export function imageRows(images: readonly ImageSummary[]): ImageRow[] {
  const rows: ImageRow[] = [];
  for (const image of images) {
    const tags = new Map<string, string[]>();
    const digests = new Map<string, string[]>();
    for (const t of image.RepoTags ?? []) {
      if (t === '<none>:<none>') continue;
      const [repo, tag] = splitRepo(t);
      tags.set(repo, [...(tags.get(repo) ?? []), tag]);
    }
    for (const d of image.RepoDigests ?? []) {
      if (d === '<none>@<none>') continue;
      const [repo, digest] = splitRepo(d);
      digests.set(repo, [...(digests.get(repo) ?? []), digest]);
    }
    for (const [repo, repoTags] of tags) {
      const ds = digests.get(repo) ?? [];
      for (const tag of repoTags) rows.push({ image, repository: repo, tag, digest: ds.length === 1 ? ds[0]! : '<none>' });
    }
    for (const [repo, ds] of digests) {
      if (tags.has(repo)) continue;
      for (const digest of ds) rows.push({ image, repository: repo, tag: '<none>', digest });
    }
    if (tags.size === 0 && digests.size === 0) rows.push({ image, repository: '<none>', tag: '<none>', digest: '<none>' });
  }
  return rows;
}

/** The fields of `images --format` (docker's ImageContext). */
export function imageView(options: { readonly truncate: boolean; readonly now?: number }): View<ImageRow> {
  const now = options.now ?? Date.now();
  const count = (n: number) => (n < 0 ? 'N/A' : String(n));
  return {
    ID: { header: 'IMAGE ID', value: (r) => (options.truncate ? shortId(r.image.Id) : r.image.Id) },
    Repository: { header: 'REPOSITORY', value: (r) => r.repository },
    Tag: { header: 'TAG', value: (r) => r.tag },
    Digest: { header: 'DIGEST', value: (r) => r.digest },
    CreatedSince: { header: 'CREATED', value: (r) => (r.image.Created > 0 ? `${humanDuration(now - r.image.Created * 1000)} ago` : 'N/A') },
    CreatedAt: { header: 'CREATED AT', value: (r) => goTimeString(r.image.Created) },
    Size: { header: 'SIZE', value: (r) => humanSize(r.image.Size) },
    VirtualSize: { header: 'SIZE', value: (r) => humanSize(r.image.Size) },
    SharedSize: { header: 'SHARED SIZE', value: (r) => (r.image.SharedSize < 0 ? 'N/A' : humanSize(r.image.SharedSize)) },
    UniqueSize: { header: 'UNIQUE SIZE', value: (r) => (r.image.SharedSize < 0 ? 'N/A' : humanSize(r.image.Size - r.image.SharedSize)) },
    Containers: { header: 'CONTAINERS', value: (r) => count(r.image.Containers) },
  };
}

/** The fields of `history --format`. */
export function historyView(options: { readonly truncate: boolean; readonly human: boolean; readonly now?: number }): View<HistoryResponseItem> {
  const now = options.now ?? Date.now();
  return {
    ID: { header: 'IMAGE', value: (h) => (h.Id.startsWith('sha256:') ? (options.truncate ? shortId(h.Id) : h.Id) : h.Id) },
    CreatedSince: {
      header: 'CREATED',
      value: (h) => (options.human ? `${humanDuration(now - h.Created * 1000)} ago` : new Date(h.Created * 1000).toISOString().replace(/\.\d+Z$/, 'Z')),
    },
    CreatedAt: { header: 'CREATED AT', value: (h) => new Date(h.Created * 1000).toISOString().replace(/\.\d+Z$/, 'Z') },
    CreatedBy: {
      header: 'CREATED BY',
      value: (h) => {
        const text = h.CreatedBy.replace(/\t/g, ' ');
        return options.truncate ? ellipsis(text, 45) : text;
      },
    },
    Size: { header: 'SIZE', value: (h) => (options.human ? humanSize(h.Size) : String(h.Size)) },
    Comment: { header: 'COMMENT', value: (h) => h.Comment },
  };
}
