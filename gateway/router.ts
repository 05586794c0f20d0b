/**
 * Which backend serves a URL: an ISAPI app mounted IIS-style
 * (`/scripts/hello.dll/extra/path` -> app hello, PATH_INFO `/extra/path`) or an
 * HTTP upstream by path prefix. Optional Host match; the longest mount wins.
 * ISAPI mounts match case-insensitively, as IIS does on Windows file systems.
 */
import type { AppConfig, RouteConfig } from './config';

export type RouteMatch =
  | { kind: 'isapi'; app: AppConfig; scriptName: string; pathInfo: string; queryString: string }
  /** A configured route: an HTTP upstream or app as primary, maybe with a shadow. */
  | { kind: 'proxy'; route: RouteConfig };

export type IsapiMatch = Extract<RouteMatch, { kind: 'isapi' }>;

/** SCRIPT_NAME/PATH_INFO of `url` under an app's mount, or undefined when the URL is not under it. */
export function matchApp(app: AppConfig, url: string): IsapiMatch | undefined {
  const q = url.indexOf('?');
  const decoded = percentDecodeBytes(q < 0 ? url : url.slice(0, q));
  const lowerPath = decoded.toLowerCase();
  const lower = app.mount.toLowerCase();
  if (lowerPath !== lower && !lowerPath.startsWith(lower + '/')) return undefined;
  return {
    kind: 'isapi',
    app,
    scriptName: decoded.slice(0, app.mount.length),
    pathInfo: decoded.slice(app.mount.length),
    queryString: q < 0 ? '' : url.slice(q + 1),
  };
}

interface Entry {
  host?: string;
  prefix: string;
  lower: string;
  app?: AppConfig;
  route?: RouteConfig;
}

/** Decodes %XX escapes into bytes, kept as a latin1 string (one char per byte), as IIS hands paths to extensions. */
export function percentDecodeBytes(s: string): string {
  if (!s.includes('%')) return s;
  return s.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

export class Router {
  private readonly entries: Entry[];

  constructor(apps: AppConfig[], routes: RouteConfig[]) {
    this.entries = [
      ...apps.map((app) => ({ host: app.host, prefix: app.mount, lower: app.mount.toLowerCase(), app })),
      ...routes.map((route) => ({ host: route.host, prefix: route.prefix, lower: route.prefix, route })),
    ];
    // Longest prefix first; host-specific before host-less of the same length; then a route
    // before an app mount of the same path, so a route can put a primary/shadow in front of an app.
    this.entries.sort(
      (a, b) => b.prefix.length - a.prefix.length || Number(!!b.host) - Number(!!a.host) || Number(!!b.route) - Number(!!a.route),
    );
  }

  match(hostHeader: string | undefined, url: string): RouteMatch | undefined {
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const queryString = q < 0 ? '' : url.slice(q + 1);
    const decoded = percentDecodeBytes(rawPath);
    const lowerPath = decoded.toLowerCase();
    const host = hostHeader?.replace(/:\d+$/, '').toLowerCase();
    for (const e of this.entries) {
      if (e.host && e.host !== host) continue;
      if (e.app) {
        if (lowerPath === e.lower || lowerPath.startsWith(e.lower + '/')) {
          return {
            kind: 'isapi',
            app: e.app,
            scriptName: decoded.slice(0, e.prefix.length),
            pathInfo: decoded.slice(e.prefix.length),
            queryString,
          };
        }
      } else if (e.route && rawPath.startsWith(e.prefix)) {
        return { kind: 'proxy', route: e.route };
      }
    }
    return undefined;
  }
}
