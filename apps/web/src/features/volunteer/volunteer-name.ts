/**
 * The name a new anonymous volunteer gets: the browser and system it runs on ("Chrome on
 * Linux", "Safari on iOS"), so that a person with a few machines on the leaderboard can tell
 * them apart before renaming any (docs/architecture.md, "The volunteer page").
 */
export function defaultVolunteerName(userAgent: string = typeof navigator === "undefined" ? "" : navigator.userAgent): string {
  const browser = browserOf(userAgent);
  const system = systemOf(userAgent);
  if (browser && system) return `${browser} on ${system}`;
  return browser ?? (system ? `a browser on ${system}` : "a browser volunteer");
}

function browserOf(ua: string): string | null {
  if (/\bEdg(e|A|iOS)?\//.test(ua)) return "Edge";
  if (/\b(OPR|Opera)\//.test(ua)) return "Opera";
  if (/\bSamsungBrowser\//.test(ua)) return "Samsung Internet";
  if (/\b(Firefox|FxiOS)\//.test(ua)) return "Firefox";
  if (/\bChromium\//.test(ua)) return "Chromium";
  if (/\b(HeadlessChrome|Chrome|CriOS)\//.test(ua)) return "Chrome";
  if (/\bVersion\/[\d.]+.*\bSafari\//.test(ua)) return "Safari";
  return null;
}

function systemOf(ua: string): string | null {
  if (/\bAndroid\b/.test(ua)) return "Android";
  if (/\b(iPhone|iPad|iPod)\b/.test(ua)) return "iOS";
  if (/\bCrOS\b/.test(ua)) return "ChromeOS";
  if (/\bWindows\b/.test(ua)) return "Windows";
  if (/\bMac OS X\b|\bMacintosh\b/.test(ua)) return "macOS";
  if (/\bLinux\b|\bX11\b/.test(ua)) return "Linux";
  return null;
}
