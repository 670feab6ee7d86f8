// Headless Chromium (the system's, never a downloaded one) on a fresh profile, allowed to reach
// this machine only: MediaPipe's web runtime posts usage logs to an outside host, and the check
// must not depend on, or talk to, anything but the local server.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.PETSEG_CHROMIUM || "/usr/bin/chromium";

export const FLAGS = [
  "--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--no-first-run", "--disable-quic",
  // WebGPU (and WebGL) on SwiftShader, the software device, where the machine has no GPU.
  "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader", "--enable-unsafe-swiftshader",
];

const LOCAL = new Set(["127.0.0.1", "localhost", "[::1]"]);

// Launch; `blocked` collects every request refused for leaving the machine.
export async function launch(blocked) {
  const profile = mkdtempSync(join(tmpdir(), "petseg-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: false, // --headless=new above: Playwright's own headless flag picks another mode
    args: FLAGS,
  });
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (LOCAL.has(url.hostname)) return route.continue();
    blocked.push(url.origin);
    return route.abort("blockedbyclient");
  });
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}
