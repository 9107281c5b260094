// The administrator's page in a real browser (Debian's Chromium, headless), against a
// running bus that holds two failed messages of route `demo`, one of them (`m-xss`)
// with markup in its body. Signs in, sees the group, opens the message (its markup must
// stay text), edits and replays it, sees it leave the list and the replay in the audit
// log, switches language. Saves screenshots. Run by crates/lgsp-cli/tests/ui.rs, which
// sets up the bus:
//   LGSP_UI_URL     base URL of the bus (http://127.0.0.1:PORT)
//   LGSP_UI_TOKEN   an operator token
//   LGSP_UI_SHOTS   folder for the screenshots
//   LGSP_UI_FIXED   the edited body to replay
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const base = process.env.LGSP_UI_URL;
const token = process.env.LGSP_UI_TOKEN;
const shots = process.env.LGSP_UI_SHOTS || 'screenshots';
const fixed = process.env.LGSP_UI_FIXED;
mkdirSync(shots, { recursive: true });

function check(cond, what) {
  if (!cond) throw new Error('failed: ' + what);
  console.log('ok: ' + what);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // Script errors and policy violations ("Refused to ..."); a failed request (the
  // refused token's 401, the favicon's 404) is the API answering, not the page failing.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  page.on('dialog', (d) => d.accept());

  await page.goto(base + '/ui/');
  await page.waitForSelector('#token');
  check((await page.textContent('#title')).includes('Đăng nhập'), 'the sign-in page is in Vietnamese by default');
  const csp = (await page.request.get(base + '/ui/')).headers()['content-security-policy'] || '';
  check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), 'a strict Content-Security-Policy');

  await page.fill('#token', 'not-a-token');
  await page.click('#signin');
  await page.waitForSelector('#signin-error:not(:empty)');
  check((await page.textContent('#signin-error')).includes('401'), 'an unknown token is refused');
  await page.fill('#token', token);
  await page.click('#signin');
  await page.waitForSelector('tr.group');
  const group = await page.textContent('tr.group');
  check(group.includes('demo') && group.includes('mapping') && group.includes('2'), 'the failure group of route demo, 2 messages');
  check(await page.evaluate(() => sessionStorage.getItem('lgsp.token') !== null && document.cookie === ''),
    'the token is in sessionStorage, no cookie');
  await page.screenshot({ path: shots + '/groups.png', fullPage: true });

  await page.click('a.open-group');
  await page.waitForSelector('tr.failed-message');
  check((await page.locator('tr.failed-message').count()) === 2, 'the group lists its 2 messages');
  await page.click('tr.failed-message:has-text("m-xss") a');
  await page.waitForSelector('#body');
  const body = await page.textContent('#body');
  check(body.includes('<script>') && body.includes('onerror='), 'the body shows its markup as text');
  check(await page.evaluate(() => window.__xss === undefined), 'nothing of the body ran');
  check(await page.evaluate(() => document.querySelectorAll('main img, main script').length === 0),
    'no element was made from the body');
  check((await page.textContent('main dl')).includes('mapping.required'), 'the message page shows its summary');
  check(!(await page.textContent('main')).includes('null'), 'nothing empty is written as null');
  await page.waitForSelector('#story table');
  check((await page.textContent('#story')).includes('stored'), 'the message page shows where the message went');
  await page.screenshot({ path: shots + '/message.png', fullPage: true });

  await page.click('#edit');
  await page.fill('#edit-body', fixed);
  await page.click('#send-edit');
  await page.waitForFunction(() => location.hash.startsWith('#/messages'));
  await page.waitForFunction(() => document.getElementById('status').textContent.includes('Đã gửi lại'));
  await page.waitForSelector('tr.failed-message');
  const left = await page.locator('tr.failed-message').allTextContents();
  check(left.length === 1 && !left[0].includes('m-xss'), 'the replayed message left the list of failed ones');

  await page.goto(base + '/ui/#/audit');
  await page.waitForSelector('#verify');
  check((await page.getAttribute('#verify', 'class')) === 'ok', 'the audit chain verifies');
  check((await page.locator('tr.audit-entry:has-text("edit_replay")').count()) === 1, 'the edit and replay is in the audit log');

  await page.click('#lang');
  await page.waitForFunction(() => document.getElementById('title').textContent === 'Audit log');
  check((await page.textContent('#nav')).includes('Failure groups'), 'the page switched to English');
  check(await page.evaluate(() => document.documentElement.lang === 'en'), 'the document language follows');
  await page.goto(base + '/ui/#/overview');
  await page.waitForFunction(() => document.getElementById('title').textContent === 'Bus overview');
  const overview = await page.textContent('main');
  check(overview.includes('RabbitMQ connection') && overview.includes('demo'), 'the overview shows the broker and the routes: ' + overview);

  check(errors.length === 0, 'no script error or policy violation: ' + errors.join(' | '));
} catch (e) {
  failed = true;
  console.error(String(e && e.stack || e));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
