import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildMachine, exportCapture, irqPreempted, SCHEDULE_TOP } from '@klpsim/kernel';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './run.js';

/*
 * The HTML reports in a real browser: Debian's Chromium, driven by
 * playwright-core. The walk report's task is described here, so what the
 * page must show comes from the description: the hooked frames, the IRQ
 * that interrupted crc32_body, and mainline's rule that a reliable walk
 * may not cross a pt_regs boundary (arch/arm64/kernel/stacktrace.c).
 */
const CHROMIUM = '/usr/bin/chromium';
const ARTEFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));

let browser: Browser;
const dir = mkdtempSync(join(tmpdir(), 'klpsim-html-'));

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: the HTML report tests need Debian's Chromium (apt-get install -y chromium; .ci/run installs it)`,
    );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
  mkdirSync(ARTEFACTS, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Opens a report; collects console errors and every request other than the file itself. */
async function open(file: string) {
  const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
  const errors: string[] = [];
  const requests: string[] = [];
  const url = pathToFileURL(file).href;
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => {
    if (r.url() !== url) requests.push(r.url());
  });
  await page.goto(url);
  return { page, errors, requests };
}

/** A kernel described as call chains, exported as a capture the walk command reads. */
function describedCapture(): string {
  const built = buildMachine({
    tasks: [
      {
        pid: 100,
        comm: 'hooked',
        frames: [
          ...SCHEDULE_TOP,
          { fn: 'worker_thread', fgraph: true },
          { fn: 'kthread', kretprobe: true },
          { fn: 'ret_from_fork' },
        ],
      },
      {
        pid: 101,
        comm: 'irq-preempted',
        frames: irqPreempted('saved'),
      },
    ],
  });
  if (!built.ok) throw new Error(built.error.message);
  const { doc, text } = exportCapture(built.value.machine, 'text.bin');
  writeFileSync(join(dir, 'text.bin'), text);
  const file = join(dir, 'capture.json');
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

describe('walk --html in Chromium', () => {
  it('draws each stack, the chain as arrows, exception boundaries and recovered addresses', async () => {
    const report = join(dir, 'walk.html');
    const r = await run('walk', describedCapture(), '--html', report);
    expect(r.code, r.err).toBe(0);
    const { page, errors, requests } = await open(report);
    // The first unreliable task is shown: the IRQ-preempted one, stopped at the boundary.
    const shown = page.locator('.panel.shown');
    await expect(shown.locator('h3').textContent()).resolves.toContain('irq-preempted (pid 101');
    await expect(shown.locator('.stop').textContent()).resolves.toMatch(/stopped at entry/);
    await expect(
      shown.locator('svg.stack text', { hasText: 'pt_regs: EL1 IRQ, PC=crc32_body+0x48' }).count(),
    ).resolves.toBe(1);
    expect(await shown.locator('svg.stack .record').count()).toBeGreaterThan(5);
    expect(await shown.locator('svg.stack path.link').count()).toBeGreaterThan(4);
    // Every policy side by side: mainline refuses the boundary, the debug walk crosses it.
    const row101 = page.locator('tr[data-target$="task-101"]');
    await expect(row101.textContent()).resolves.toMatch(/UNRELIABLE/);
    // Click the hooked task: its panel replaces the other, with the tracers' rewrites recovered.
    await page.locator('tr[data-target$="task-100"]').click();
    const hooked = page.locator('.panel.shown');
    await expect(hooked.locator('h3').textContent()).resolves.toContain('hooked (pid 100');
    await expect(
      hooked.locator('svg.stack text', { hasText: '(fgraph) -> recovered worker_thread' }).count(),
    ).resolves.toBe(1);
    await expect(
      hooked.locator('svg.stack text', { hasText: '(kretprobe) -> recovered kthread' }).count(),
    ).resolves.toBe(1);
    expect(await page.locator('.panel.shown').count()).toBe(1);
    await page.screenshot({ path: join(ARTEFACTS, 'walk-report.png'), fullPage: true });
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  });
});

describe('the main job --html in Chromium', () => {
  it('the answer, every bundled task clickable, the transition charted', async () => {
    const report = join(dir, 'main.html');
    const r = await run('--html', report);
    expect(r.code, r.err).toBe(0);
    const { page, errors, requests } = await open(report);
    await expect(page.locator('#answer').textContent()).resolves.toContain(
      '71/71 tasks, 532/532 frames',
    );
    await expect(page.locator('#answer').textContent()).resolves.toContain(
      '63/63 tasks, 476/476 frames',
    );
    // The transition's chart: a drawn series with the enable and the signal rounds marked, and no
    // completion: the built-in patch changes the kthread workers' thread function, so the kernel
    // never completes it without force.
    const chart = page.locator('#transition svg.chart');
    expect(await chart.locator('path.series').count()).toBe(1);
    expect((await chart.locator('path.series').getAttribute('d'))!.length).toBeGreaterThan(20);
    await expect(chart.locator('text', { hasText: 'enable' }).count()).resolves.toBeGreaterThan(0);
    await expect(chart.locator('text', { hasText: 'complete' }).count()).resolves.toBe(0);
    // init in the 7.2 capture: its stack is drawn and ends at the FINAL meta record.
    await page.locator('tr[data-target="capture-1-task-1"]').click();
    const init = page.locator('#capture-1 .panel.shown');
    await expect(init.locator('h3').textContent()).resolves.toContain('init (pid 1');
    await expect(
      init.locator('svg.stack text', { hasText: 'FINAL meta record' }).count(),
    ).resolves.toBe(1);
    await page.screenshot({ path: join(ARTEFACTS, 'main-report.png'), fullPage: false });
    await page.locator('#transition').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTEFACTS, 'main-report-transition.png') });
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  });
});

describe('the transition and predict --html reports in Chromium', () => {
  it('transition: the chart drawn, a task row opens the stack that blocked it', async () => {
    const report = join(dir, 'transition.html');
    const r = await run('transition', '--html', report);
    // The built-in scenario never completes without force: exit 1, and the report says who and why.
    expect(r.code, r.err).toBe(1);
    const { page, errors, requests } = await open(report);
    await expect(page.locator('#answer pre').textContent()).resolves.toContain(
      'NEVER COMPLETES WITHOUT FORCE',
    );
    const chart = page.locator('#transition svg.chart');
    expect(await chart.locator('path.series').count()).toBe(1);
    // The kthread workers sleep in kthread_worker_fn, their thread function: the first row opens its stack.
    await page.locator('#blocked tr[data-target="blocked-0"]').click();
    const panel = page.locator('#blocked .panel.shown');
    await expect(panel.locator('h3').textContent()).resolves.toContain('kthread_worker_fn');
    await expect(panel.locator('li.blocking').textContent()).resolves.toMatch(
      /^kthread_worker_fn\+0x/,
    );
    await page.screenshot({ path: join(ARTEFACTS, 'transition-report.png'), fullPage: true });
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  });

  it('transition --runs: the distribution of completion times', async () => {
    const EXAMPLE = fileURLToPath(
      new URL('../../../examples/busy-kthread.scenario.json', import.meta.url),
    );
    const report = join(dir, 'runs.html');
    const r = await run('transition', EXAMPLE, '--runs', '4', '--workers', '2', '--html', report);
    expect(r.code, r.err).toBe(0);
    const { page, errors, requests } = await open(report);
    const chart = page.locator('#distribution svg.chart');
    expect(await chart.locator('path.series').count()).toBe(1);
    await expect(page.locator('#answer pre').textContent()).resolves.toContain(
      'completes in 100.0% of 4 runs',
    );
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  });

  it('predict: each task that would not switch, its walked stack with the blocking frame marked', async () => {
    const CAP = fileURLToPath(
      new URL(
        '../../../fixtures/transitions/linux-7.2-livepatch/capture-user-pre.json',
        import.meta.url,
      ),
    );
    const report = join(dir, 'predict.html');
    const r = await run('predict', CAP, '--patch', 'sleepermod:sm_r_level3', '--html', report);
    expect(r.code, r.err).toBe(0);
    const { page, errors, requests } = await open(report);
    // The kernel's first attempt of the real `user` transition: workload:74 sleeps in sm_r_level3.
    const row = page.locator('#predict tr[data-target]', { hasText: 'workload:74' });
    await row.click();
    await expect(page.locator('#predict .panel.shown li.blocking').textContent()).resolves.toMatch(
      /^sm_r_level3\+0x/,
    );
    await page.screenshot({ path: join(ARTEFACTS, 'predict-report.png'), fullPage: true });
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  });
});
