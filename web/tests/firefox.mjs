// Debian's Firefox ESR for the browser suites, driven by puppeteer-core over
// WebDriver BiDi (never a downloaded browser). The prefs give it fake
// camera and microphone streams without prompts, let media play without a
// gesture, and let WebRTC gather loopback candidates (Firefox gathers none
// on 127.0.0.1 without the loopback pref and a stored permission).
import puppeteer from "puppeteer-core";

export const FIREFOX = process.env.FIREFOX ?? "/usr/bin/firefox-esr";

const PREFS = {
  "media.navigator.streams.fake": true,
  "media.navigator.permission.disabled": true,
  "media.autoplay.default": 0,
  "media.autoplay.blocking_policy": 0,
  "media.peerconnection.ice.loopback": true,
  "permissions.default.camera": 1,
  "permissions.default.microphone": 1,
  "media.getusermedia.browser.enabled": true,
  // Quiet: no update checks, telemetry or first-run pages on a closed network.
  "app.update.enabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "toolkit.telemetry.enabled": false,
  "browser.shell.checkDefaultBrowser": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
};

/** Prefs that save downloads to `dir` without asking (the app's CSV and text files). */
export const downloadPrefs = (dir) => ({
  "browser.download.folderList": 2,
  "browser.download.dir": dir,
  "browser.download.useDownloadDir": true,
  "browser.download.always_ask_before_handling_new_types": false,
  "browser.download.manager.showWhenStarting": false,
  "browser.helperApps.neverAsk.saveToDisk": "text/csv,text/plain",
});

/** A headless Firefox (with `prefs` besides the usual ones); `person()` gives each person their own context. */
export async function launchFirefox({ prefs = {} } = {}) {
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: FIREFOX,
    headless: true,
    extraPrefsFirefox: { ...PREFS, ...prefs },
  });
  return {
    browser,
    /** A page in a fresh browser context (own storage), named for messages. */
    async person(name, errors = []) {
      const context = await browser.createBrowserContext();
      const page = await context.newPage();
      page.name = name;
      page.on("pageerror", (e) => errors.push(`[${name}] ${e.message}`));
      return page;
    },
    close: () => browser.close(),
  };
}
