// The drop-a-photo page: the photo, resized to the model's input, segmented by MediaPipe's
// ImageSegmenter with the chosen file and delegate; the class mask drawn beside it.
import { mediapipeSegmenter } from "./segment.mjs";

const PALETTE = [[255, 140, 0], [40, 40, 40], [250, 250, 250]]; // pet, background, border
const $ = (id) => document.getElementById(id);
const say = (text) => { $("status").textContent = text; };

function modelUrl() {
  const file = $("model").files[0];
  return file ? URL.createObjectURL(file) : `/job/${$("modelUrl").value}`;
}

// The photo, at most 512 pixels wide or high, drawn on the left canvas: {rgb, width, height}.
async function pixels(file) {
  const original = await createImageBitmap(file);
  const scale = Math.min(1, 512 / Math.max(original.width, original.height));
  const width = Math.round(original.width * scale), height = Math.round(original.height * scale);
  const canvas = $("image");
  Object.assign(canvas, { width, height });
  const ctx = canvas.getContext("2d");
  ctx.drawImage(original, 0, 0, width, height);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const rgb = Uint8Array.from({ length: width * height * 3 }, (_, i) => rgba[Math.floor(i / 3) * 4 + (i % 3)]);
  return { rgb, width, height };
}

function drawMask(mask, width, height) {
  const canvas = $("mask");
  Object.assign(canvas, { width, height });
  const ctx = canvas.getContext("2d");
  const out = ctx.createImageData(width, height);
  mask.forEach((c, p) => out.data.set([...PALETTE[c], 255], p * 4));
  ctx.putImageData(out, 0, 0);
}

async function segment(photo) {
  say("loading the model...");
  const segmenter = await mediapipeSegmenter(modelUrl(), $("delegate").value);
  try {
    const { rgb, width, height } = await pixels(photo);
    const started = performance.now();
    const mask = await segmenter.segment(rgb, width, height);
    drawMask(mask, width, height);
    const pet = mask.filter((c) => c === 0).length / mask.length;
    const ms = (performance.now() - started).toFixed(0);
    say(`${width}x${height}, first inference ${ms} ms on ${$("delegate").value}; pet: ${(100 * pet).toFixed(1)} % of the photo`);
  } finally {
    segmenter.close();
  }
}

const run = (file) => segment(file).catch((e) => say(`failed: ${e.message ?? e}`));
$("photo").addEventListener("change", (e) => e.target.files[0] && run(e.target.files[0]));
$("drop").addEventListener("dragover", (e) => e.preventDefault());
$("drop").addEventListener("drop", (e) => {
  e.preventDefault();
  if (e.dataTransfer.files[0]) run(e.dataTransfer.files[0]);
});
