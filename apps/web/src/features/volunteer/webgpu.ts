/** True when `navigator.gpu` gives an adapter (SwiftShader's counts: it computes, slowly). */
export async function hasWebGpuAdapter(): Promise<boolean> {
  try {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    return Boolean(await gpu?.requestAdapter());
  } catch {
    return false;
  }
}
