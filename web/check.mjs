#!/usr/bin/env node
// node check.mjs JOB.json RESULTS.json: run every entry of JOB.json's "runs" in headless Chromium,
// each on a page of its own, and write the masks (or the failure) per run to RESULTS.json.
//
// JOB.json (written by python -m petseg.benchmark.browser): {"images": "images.u8", "size": S,
//   "count": N, "timeout_s": T, "runs": [{"runtime": "mediapipe"|"litertjs",
//   "delegate": "cpu"|"gpu"|"wasm"|"webgpu", "build": "default"|"jspi", "model": "x.tflite"}]};
// files are named relative to JOB.json's folder, served on 127.0.0.1 as /job/...
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "./browser.mjs";
import { serve } from "./serve.mjs";

const WEB = dirname(fileURLToPath(import.meta.url));

// One run on a fresh page: LiteRT.js loads once per page, and a crash stays in its page.
async function runOne(context, origin, job, run) {
  const page = await context.newPage();
  const log = [];
  page.on("console", (m) => ["error", "warning"].includes(m.type()) && log.push(m.text()));
  page.on("pageerror", (e) => log.push(String(e.message ?? e)));
  try {
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => window.petsegReady === true);
    const spec = { ...run, images: job.images, size: job.size, count: job.count };
    const timeout = new Promise((done) =>
      setTimeout(() => done({ ok: false, error: `no answer within ${job.timeout_s} s` }), job.timeout_s * 1000));
    const answer = await Promise.race([page.evaluate((s) => window.petsegRun(s), spec), timeout]);
    return { ...run, ...answer, console: log.slice(0, 20) };
  } catch (error) {
    return { ...run, ok: false, error: String(error?.message ?? error).split("\n")[0], console: log.slice(0, 20) };
  } finally {
    await page.close({ runBeforeUnload: false }).catch(() => {});
  }
}

async function main([jobFile, resultsFile]) {
  if (!jobFile || !resultsFile) {
    console.error("usage: node check.mjs JOB.json RESULTS.json");
    return 2;
  }
  const job = JSON.parse(readFileSync(jobFile, "utf8"));
  const { server, origin } = await serve(WEB, dirname(resolve(jobFile)));
  const blocked = [];
  const browser = await launch(blocked);
  const results = [];
  try {
    const probe = await browser.context.newPage();
    const version = await probe.evaluate(() => navigator.userAgent);
    await probe.close();
    for (const run of job.runs) {
      results.push(await runOne(browser.context, origin, job, run));
      const last = results.at(-1);
      console.log(`${run.runtime} ${run.delegate} ${run.model}: ${last.ok ? "ok" : last.error.split("\n")[0]}`);
    }
    const out = { chromium: version, blocked: [...new Set(blocked)], results };
    writeFileSync(resultsFile + ".part", JSON.stringify(out));
    renameSync(resultsFile + ".part", resultsFile); // a reader never sees half a file
  } finally {
    await browser.close();
    server.close();
  }
  return 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (error) => {
  console.error(`check.mjs: ${String(error?.message ?? error).split("\n")[0]}`);
  process.exit(1);
});
