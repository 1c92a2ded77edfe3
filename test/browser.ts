/**
 * A page opened in a real browser: Debian's Chromium, headless, driven by playwright-core, with a fresh
 * profile and nothing that reaches the network. Collects console errors, page errors and every request
 * the page made, so a test can say the page drew, said nothing wrong, and fetched nothing.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, BrowserContext, Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export interface OpenedPage {
  page: Page;
  /** console.error messages and uncaught exceptions, in order. */
  errors: string[];
  /** Every URL the page asked for, the page's own included. */
  requests: string[];
  close(): Promise<void>;
}

/** Opens `file` in headless Chromium; fails with the package to install when there is none. */
export async function openInChromium(file: string, viewport = { width: 1280, height: 900 }): Promise<OpenedPage> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no ${CHROMIUM}: install Debian's chromium (apt-get install chromium) to check pages in a real browser`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-chromium-'));
  let context: BrowserContext | undefined;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const page = context.pages()[0] ?? await context.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (err) => errors.push(`page: ${err.message}`));
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(`file://${path.resolve(file)}`, { waitUntil: 'load' });
    const opened = context;
    return {
      page, errors, requests,
      async close() {
        await opened.close();
        fs.rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await context?.close();
    fs.rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}

/**
 * What each figure's SVG drew: its size on the page and its marks (vega's `g.mark-*` groups' shapes)
 * that have a box of their own — a blank or collapsed chart has none.
 */
export function figureMarks(page: Page): Promise<{ caption: string; width: number; height: number; marks: number; drawn: number }[]> {
  // Written as text: it runs in the page, and this project compiles without the DOM's types.
  return page.evaluate(`[...document.querySelectorAll('figure')].map((figure) => {
    const svg = figure.querySelector('svg');
    const box = svg.getBoundingClientRect();
    const shapes = [...svg.querySelectorAll('g[class^="mark-"] path, g[class^="mark-"] rect, g[class^="mark-"] line, g[class^="mark-"] circle')]
      .filter((el) => !el.closest('g[class*="role-axis"], g[class*="role-legend"], g[class*="role-title"], g[class*="background"]'));
    const drawn = shapes.filter((el) => {
      const b = el.getBBox();
      return b.width > 0 || b.height > 0;
    }).length;
    return { caption: figure.querySelector('figcaption')?.textContent ?? '', width: box.width, height: box.height, marks: shapes.length, drawn };
  })`);
}
