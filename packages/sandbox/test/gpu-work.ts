// A real WebGPU compute shader as work code, shared by the sandbox and end-to-end tests.

/** Work code: squares each element of its input plus one on the GPU (v[i] = v[i]² + 1, in f32). */
export const gpuSquaresCode = `export default async function work(input, ctx) {
    const device = ctx.gpu;
    if (!device) throw new Error("no GPUDevice in ctx.gpu");
    const data = new Float32Array(input);
    const size = data.byteLength;
    const storage = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    const readback = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(storage, 0, data);
    const module = device.createShaderModule({ code: \`
      @group(0) @binding(0) var<storage, read_write> v: array<f32>;
      @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
        if (id.x < arrayLength(&v)) { v[id.x] = v[id.x] * v[id.x] + 1.0; }
      }\` });
    const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
    const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: storage } }] });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(Math.ceil(data.length / 64));
    pass.end();
    encoder.copyBufferToBuffer(storage, 0, readback, 0, size);
    device.queue.submit([encoder.finish()]);
    await readback.mapAsync(GPUMapMode.READ);
    const out = Array.from(new Float32Array(readback.getMappedRange().slice(0)));
    readback.unmap();
    storage.destroy();
    readback.destroy();
    return out;
  }`;

/** What `gpuSquaresCode` returns for `values`, computed here (exact for inputs whose squares fit f32, e.g. quarters). */
export const gpuSquaresExpected = (values: number[]): number[] => values.map((v) => Math.fround(Math.fround(v) * Math.fround(v) + 1));
