// Segment images in the browser with the runtimes web apps use, from files served on this origin:
// MediaPipe Tasks' ImageSegmenter (CPU or GPU delegate) and LiteRT.js (wasm or WebGPU).
// Every function takes uint8 RGB images at the model's size and gives one class id per pixel.

export const MEDIAPIPE_WASM = "/node_modules/@mediapipe/tasks-vision/wasm";
export const LITERT_WASM = "/node_modules/@litertjs/core/wasm/";

// RGB bytes (H x W x 3) as the RGBA ImageData MediaPipe takes, alpha opaque.
export function imageData(rgb, width, height = width) {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgba[j] = rgb[i];
    rgba[j + 1] = rgb[i + 1];
    rgba[j + 2] = rgb[i + 2];
    rgba[j + 3] = 255;
  }
  return new ImageData(rgba, width, height);
}

// MediaPipe's ImageSegmenter on delegate "CPU" or "GPU": a function image -> class ids, at the
// image's size (MediaPipe resizes to the model's input and the mask back).
export async function mediapipeSegmenter(modelUrl, delegate) {
  const { FilesetResolver, ImageSegmenter } = await import("@mediapipe/tasks-vision");
  const fileset = await FilesetResolver.forVisionTasks(MEDIAPIPE_WASM);
  const segmenter = await ImageSegmenter.createFromOptions(fileset, {
    baseOptions: { modelAssetPath: modelUrl, delegate },
    runningMode: "IMAGE",
    outputCategoryMask: true,
    outputConfidenceMasks: false,
  });
  const segment = (rgb, width, height = width) => {
    const result = segmenter.segment(imageData(rgb, width, height));
    // The mask lives in MediaPipe's memory (or a GPU texture) until close(): copy it out.
    const mask = new Uint8Array(result.categoryMask.getAsUint8Array());
    result.close();
    return mask;
  };
  return { segment, labels: segmenter.getLabels(), close: () => segmenter.close() };
}

// Class ids from logits laid out pixel by pixel (S*S*C values): the argmax, first maximum wins.
export function argmax(logits, classes) {
  const out = new Uint8Array(logits.length / classes);
  for (let p = 0; p < out.length; p++) {
    let best = 0;
    for (let c = 1; c < classes; c++) {
      if (logits[p * classes + c] > logits[p * classes + best]) best = c;
    }
    out[p] = best;
  }
  return out;
}

// LiteRT.js on accelerator "wasm" or "webgpu"; build "jspi" loads its JSPI WebAssembly.
export async function litertSegmenter(modelUrl, accelerator, build) {
  const { loadLiteRt, loadAndCompile, Tensor } = await import("@litertjs/core");
  await loadLiteRt(LITERT_WASM, { jspi: build === "jspi" });
  const model = await loadAndCompile(modelUrl, { accelerator });
  const input = model.getInputDetails()[0];
  const classes = model.getOutputDetails()[0].shape.at(-1);
  const segment = async (rgb, size) => {
    // The model takes raw 0..255 pixels: as bytes (uint8 input) or as their float values.
    const data = input.dtype === "uint8" ? new Uint8Array(rgb) : Float32Array.from(rgb);
    const tensor = new Tensor(data, [1, size, size, 3]);
    const outputs = await model.run(tensor);
    const host = await outputs[0].moveTo("wasm");
    const mask = argmax(host.toTypedArray(), classes);
    tensor.delete();
    host.delete();
    return mask;
  };
  return {
    segment,
    fullyAccelerated: model.isFullyAccelerated,
    inputDtype: input.dtype,
    close: () => model.delete(),
  };
}
