// The check page's entry: window.petsegRun(job) segments a job's images with one runtime and
// delegate and answers {ok, masks (base64 class ids), device, ...} or {ok: false, error}.
import { litertSegmenter, mediapipeSegmenter } from "./segment.mjs";

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

// Which device the delegate computes on, as the browser names it (e.g. SwiftShader).
async function deviceName(delegate) {
  if (delegate === "webgpu") {
    const adapter = await navigator.gpu?.requestAdapter();
    if (!adapter) return "no WebGPU adapter";
    const info = adapter.info || {};
    return [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "WebGPU";
  }
  if (delegate === "gpu") {
    const gl = new OffscreenCanvas(1, 1).getContext("webgl2");
    if (!gl) return "no WebGL2";
    const debug = gl.getExtension("WEBGL_debug_renderer_info");
    return gl.getParameter(debug ? debug.UNMASKED_RENDERER_WEBGL : gl.RENDERER);
  }
  return "cpu";
}

async function open(job) {
  const model = `/job/${job.model}`;
  if (job.runtime === "mediapipe") return mediapipeSegmenter(model, job.delegate.toUpperCase());
  if (job.runtime === "litertjs") return litertSegmenter(model, job.delegate, job.build);
  throw new Error(`unknown runtime ${job.runtime}`);
}

async function run(job) {
  const started = performance.now();
  const images = await fetchBytes(`/job/${job.images}`);
  const pixels = job.size * job.size;
  const segmenter = await open(job);
  const loadMs = performance.now() - started;
  const masks = new Uint8Array(job.count * pixels);
  const first = performance.now();
  for (let i = 0; i < job.count; i++) {
    const rgb = images.subarray(i * pixels * 3, (i + 1) * pixels * 3);
    const mask = await segmenter.segment(rgb, job.size);
    if (mask.length !== pixels) throw new Error(`mask of ${mask.length} pixels, expected ${pixels}`);
    masks.set(mask, i * pixels);
  }
  const segmentMs = (performance.now() - first) / job.count;
  const { fullyAccelerated = null, inputDtype = null, labels = null } = segmenter;
  segmenter.close();
  return { ok: true, masks: base64(masks), device: await deviceName(job.delegate), loadMs, segmentMs,
           fullyAccelerated, inputDtype, labels };
}

window.petsegRun = async (job) => {
  try {
    return await run(job);
  } catch (error) {
    return { ok: false, error: String(error?.message ?? error) };
  }
};
window.petsegReady = true;
