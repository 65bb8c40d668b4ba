/**
 * The page's files, read once at start and served from memory: our own files
 * from `public/` and a fixed list of Preact and htm ES modules from this
 * package's node_modules (no CDN, no build step). Only the files listed here
 * can ever be served, so a request path is never joined onto a folder.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
  /** Strong validator: a hash of the body. */
  readonly etag: string;
}

/** URL path prefix of every file but the page itself. */
export const ASSET_PREFIX = "/dashboard/";

const PUBLIC_DIR = fileURLToPath(new URL("../public/", import.meta.url));
const OWN_FILES = ["app.js", "format.js", "stream-client.js", "style.css"] as const;

/** Vendor modules: [package, file inside the package, required]. Source maps are served when present. */
const VENDOR_FILES: readonly (readonly [string, string])[] = [
  ["preact", "dist/preact.module.js"],
  ["preact", "hooks/dist/hooks.module.js"],
  ["htm", "dist/htm.module.js"],
  ["htm", "preact/index.module.js"],
];

/** What the page's bare imports resolve to (the import map). */
const IMPORT_MAP = {
  imports: {
    preact: "./dashboard/vendor/preact/dist/preact.module.js",
    "preact/hooks": "./dashboard/vendor/preact/hooks/dist/hooks.module.js",
    htm: "./dashboard/vendor/htm/dist/htm.module.js",
    "htm/preact": "./dashboard/vendor/htm/preact/index.module.js",
  },
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".html": "text/html; charset=utf-8",
};

export interface AssetTable {
  /** The page (GET /). */
  readonly page: Asset;
  /** Files under {@link ASSET_PREFIX}, by full URL path. */
  readonly files: ReadonlyMap<string, Asset>;
  /** The Content-Security-Policy for the page: only our own origin, plus the inline import map by its hash. */
  readonly contentSecurityPolicy: string;
}

/** Reads every file the dashboard serves. Throws at start, naming the file, if one is missing. */
export function loadAssets(): AssetTable {
  const files = new Map<string, Asset>();
  for (const name of OWN_FILES) files.set(`${ASSET_PREFIX}${name}`, asset(join(PUBLIC_DIR, name)));
  const require = createRequire(import.meta.url);
  for (const [pkg, file] of VENDOR_FILES) {
    const root = packageRoot(require, pkg);
    const path = join(root, file);
    files.set(`${ASSET_PREFIX}vendor/${pkg}/${file}`, asset(path));
    if (existsSync(`${path}.map`)) files.set(`${ASSET_PREFIX}vendor/${pkg}/${file}.map`, asset(`${path}.map`));
  }
  for (const target of Object.values(IMPORT_MAP.imports)) {
    if (!files.has(target.slice(1))) throw new Error(`dashboard: the import map names ${target}, which is not served`);
  }

  const importMap = JSON.stringify(IMPORT_MAP);
  const template = readFileSync(join(PUBLIC_DIR, "index.html"), "utf8");
  const marker = "<!--IMPORT_MAP-->";
  if (template.split(marker).length !== 2) throw new Error(`dashboard: index.html must hold ${marker} exactly once`);
  const html = template.replace(marker, `<script type="importmap">${importMap}</script>`);
  const importMapHash = createHash("sha256").update(importMap).digest("base64");
  const contentSecurityPolicy = [
    "default-src 'none'",
    `script-src 'self' 'sha256-${importMapHash}'`,
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return { page: fromBody(Buffer.from(html), ".html"), files, contentSecurityPolicy };
}

function asset(path: string): Asset {
  let body: Buffer;
  try {
    body = readFileSync(path);
  } catch (err) {
    throw new Error(`dashboard: cannot read ${path}: ${(err as Error).message}`);
  }
  return fromBody(body, path.slice(path.lastIndexOf(".")));
}

function fromBody(body: Buffer, extension: string): Asset {
  const contentType = CONTENT_TYPES[extension];
  if (contentType === undefined) throw new Error(`dashboard: no content type for ${extension} files`);
  const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
  return { body, contentType, etag };
}

/** A package's folder, found through Node's resolution from this package (works with any node_modules layout). */
function packageRoot(require: NodeJS.Require, pkg: string): string {
  // htm exports no ./package.json; its main entry lives one folder down (dist/), as does preact's.
  const main = require.resolve(pkg);
  const root = dirname(dirname(main));
  if (!existsSync(join(root, "package.json"))) throw new Error(`dashboard: cannot find the ${pkg} package folder (from ${main})`);
  return root;
}
