// The work every fault scenario computes: a known function of the index, so each result can
// be checked, that spins a little per chunk so volunteers die holding chunks in progress.
export const spinMs = 2;
export const reference = (n: number) => (n * 7919) % 10007;
export const workCode = `export default function work(n) {
  const end = Date.now() + ${spinMs};
  while (Date.now() < end);
  return (n * 7919) % 10007;
}`;
