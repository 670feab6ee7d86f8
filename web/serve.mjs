// A static file server on 127.0.0.1 for the browser check: the harness and node_modules from web/,
// and one job's files (models, images) under /job/. Nothing else is reachable through it.
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, normalize, resolve, sep } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".cjs": "text/javascript",
  ".json": "application/json",
  ".wasm": "application/wasm", // WebAssembly.instantiateStreaming insists on it
  ".map": "application/json",
  ".css": "text/css",
};

// The file under `root` that `urlPath` names, or null when it lies outside or is no file.
function inside(root, urlPath) {
  const base = resolve(root);
  const path = resolve(base, "." + normalize(decodeURIComponent(urlPath)));
  if (path !== base && !path.startsWith(base + sep)) return null;
  try {
    return statSync(path).isFile() ? path : null;
  } catch {
    return null;
  }
}

// Start serving; resolves to {server, origin} once listening on a free port of 127.0.0.1.
export function serve(webRoot, jobRoot) {
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    const path = url.pathname.startsWith("/job/")
      ? inside(jobRoot, url.pathname.slice(4))
      : inside(webRoot, url.pathname === "/" ? "/harness.html" : url.pathname);
    if (!path || req.method !== "GET") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      "Content-Type": TYPES[extname(path)] || "application/octet-stream",
      "Cache-Control": "no-store",
    });
    createReadStream(path).pipe(res);
  });
  return new Promise((done, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () =>
      done({ server, origin: `http://127.0.0.1:${server.address().port}` }),
    );
  });
}

// `node serve.mjs [FOLDER]` (npm start): the drop-a-photo page, demo.html, on 127.0.0.1, with
// FOLDER's files (e.g. the exports) under /job/.
if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  const web = resolve(new URL(".", import.meta.url).pathname);
  const { origin } = await serve(web, resolve(process.argv[2] || "."));
  console.log(`open ${origin}/demo.html (Ctrl-C stops it)`);
}
