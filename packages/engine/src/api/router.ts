import type { ApiExchange } from './api-exchange.js';

/** What a route does with one request. */
export type RouteHandler = (exchange: ApiExchange) => Promise<void>;

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly keys: readonly string[];
  readonly handler: RouteHandler;
}

/** A matched route: its handler and the path parameters, unescaped. */
export interface RouteMatch {
  readonly handler: RouteHandler;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Docker's routes. `{id}` matches one path segment; `{name*}` matches greedily across `/`, since
 * image names carry slashes and a registry port (`/images/localhost:5000/a/b/push`).
 */
export class Router {
  readonly #routes: Route[] = [];

  add(method: string, path: string, handler: RouteHandler): this {
    const keys: string[] = [];
    const source = path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{(\w+)(\\\*)?\}/g, (_m, key: string, greedy: string | undefined) => {
      keys.push(key);
      return greedy ? '(.+)' : '([^/]+)';
    });
    this.#routes.push({ method, pattern: new RegExp(`^${source}/?$`), keys, handler });
    return this;
  }

  /** The route for a method and an unversioned path; `methodNotAllowed` when only the method is wrong. */
  match(method: string, path: string): RouteMatch | 'methodNotAllowed' | undefined {
    let pathMatched = false;
    for (const route of this.#routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      const wanted = method === 'HEAD' && route.method === 'GET' ? 'GET' : method;
      if (route.method !== wanted) {
        pathMatched = true;
        continue;
      }
      const params: Record<string, string> = {};
      route.keys.forEach((key, i) => (params[key] = decodePathPart(m[i + 1]!)));
      return { handler: route.handler, params };
    }
    return pathMatched ? 'methodNotAllowed' : undefined;
  }
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
