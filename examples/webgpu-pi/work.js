// Monte Carlo π on the GPU: a WebGPU compute shader draws points from a counter-based hash
// (PCG) and counts those inside the quarter circle, in exact integer arithmetic, so every
// volunteer's GPU (or SwiftShader) gives the same count and `verify.js` can check it in JS.
// A range task: chunk { start, end } covers sample numbers start..end-1.
// Submit with --webgpu: only volunteers with a WebGPU adapter get it, and ctx.gpu is theirs.
const samplesPerInvocation = 256;
const workgroupSize = 64;

const shader = /* wgsl */ `
struct Params { start: u32, end: u32, perInvocation: u32, pad: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> inside: array<u32>;

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let first = params.start + id.x * params.perInvocation;
  if (first >= params.end) { return; }
  let last = min(first + params.perInvocation, params.end);
  var count = 0u;
  for (var sample = first; sample < last; sample++) {
    // 15-bit coordinates: x² + y² stays below 2³¹, exact in u32.
    let x = pcg(2u * sample) >> 17u;
    let y = pcg(2u * sample + 1u) >> 17u;
    if (x * x + y * y < 1073741824u) { count++; }
  }
  inside[id.x] = count;
}`;

export default async function work(input, ctx) {
  const device = ctx.gpu;
  if (!device) throw new Error("no WebGPU here: submit this task with --webgpu so only volunteers with a GPU adapter get it");
  if (input.end > 2 ** 31) throw new Error("sample numbers must stay below 2^31");
  const invocations = Math.ceil((input.end - input.start) / samplesPerInvocation);
  const params = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(params, 0, new Uint32Array([input.start, input.end, samplesPerInvocation, 0]));
  const output = device.createBuffer({ size: invocations * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const readback = device.createBuffer({ size: invocations * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module: device.createShaderModule({ code: shader }), entryPoint: "main" } });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: params } },
      { binding: 1, resource: { buffer: output } },
    ],
  });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(Math.ceil(invocations / workgroupSize));
  pass.end();
  encoder.copyBufferToBuffer(output, 0, readback, 0, invocations * 4);
  device.queue.submit([encoder.finish()]);
  await readback.mapAsync(GPUMapMode.READ);
  const counts = new Uint32Array(readback.getMappedRange().slice(0));
  readback.unmap();
  for (const buffer of [params, output, readback]) buffer.destroy();
  const inside = counts.reduce((sum, n) => sum + n, 0);
  return { samples: input.end - input.start, inside };
}
