// The chat page of `./xllm serve` in headless Chromium (Playwright driving Debian's /usr/bin/chromium). It uploads an
// image and asks about it, records speech through Chromium's fake microphone (fed with the given WAV) and sends it,
// then uploads the WAV, and checks that each answer streams in, that the media show in the conversation and that the
// whole history stays. Leaves a screenshot. Exits 1 on the first failed check.
//
//   node tools/clients/browser-test.mjs --base-url http://127.0.0.1:8080 --image photo.png --wav speech.wav \
//        --screenshot target/browser-test/chat.png [--chromium /usr/bin/chromium]
//   node tools/clients/browser-test.mjs --base-url URL --text-only --api-key K --screenshot text.png
// The second form is for a text LLM behind a bearer key: the page must say that it needs the key, take it from
// Settings, keep the media buttons disabled and answer a typed question.
import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

function options(argv) {
  const out = { chromium: process.env.CHROMIUM ?? '/usr/bin/chromium' };
  for (let i = 2; i < argv.length; i += 2) {
    if (argv[i] === '--text-only') {
      out['text-only'] = true;
      i--;
      continue;
    }
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument '${argv[i]}'`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  const needed = out['text-only'] !== undefined ? ['base-url', 'api-key', 'screenshot']
    : ['base-url', 'image', 'wav', 'screenshot'];
  for (const required of needed) {
    if (!out[required]) throw new Error(`--${required} is required`);
  }
  if (!existsSync(out.chromium)) {
    throw new Error(`${out.chromium} is missing: install Debian's chromium (apt-get install -y chromium; tools/test-setup.sh does)`);
  }
  return out;
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const args = options(process.argv);
const browser = await chromium.launch({
  executablePath: args.chromium,
  headless: true,
  args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', '--no-sandbox',
    ...(args.wav ? [`--use-file-for-fake-audio-capture=${resolve(args.wav)}`] : [])],
});
const problems = [];

/** A text LLM behind a key: the page says it needs the key, takes it from Settings, and answers; no media buttons. */
async function textOnly(page) {
  await page.waitForFunction(() => document.getElementById('status').classList.contains('error'));
  const status = await page.textContent('#status');
  check(/API key/i.test(status) && /Settings/.test(status), `the page asks for the key: ${status}`);
  check(await page.isDisabled('#send'), 'Send waits for the key');
  await page.click('#settings summary');
  await page.fill('#api-key', args['api-key']);
  await page.press('#api-key', 'Enter');
  await page.dispatchEvent('#api-key', 'change');
  await page.waitForFunction(() => !document.getElementById('send').disabled);
  const model = await page.textContent('#model');
  check(/reads text$/.test(model), `a text model: ${model}`);
  for (const id of ['#attach-image', '#attach-video', '#attach-audio', '#record']) {
    check(await page.isDisabled(id), `${id} is disabled for a text model`);
  }
  await page.fill('#max-tokens', '8');
  await page.click('#settings summary');
  await page.fill('#prompt', 'Say hello in **bold**.');
  await page.press('#prompt', 'Enter');
  await page.waitForFunction(() => document.querySelector('.msg.assistant')?.dataset.done === 'true');
  const shown = await page.locator('.msg.assistant').evaluate((e) => ({ error: e.dataset.error ?? null,
    chunks: Number(e.dataset.chunks), text: e.textContent }));
  check(shown.error === null && shown.chunks >= 1, `the answer streamed in: ${JSON.stringify(shown)}`);
  check(await page.locator('.msg.user strong').count() === 1, 'the question is shown as Markdown');
  check(await page.evaluate(() => localStorage.getItem('xllm.apiKey')) === args['api-key'], 'the key is kept');
  console.log(`text answer: ${shown.chunks} chunks: ${JSON.stringify(shown.text)}`);
}

/** An X-LLM: upload an image and ask, record speech and send it, upload a WAV; history; New chat. */
async function mediaFlow(page) {
  await page.waitForFunction(() => !document.getElementById('send').disabled);
  const model = await page.textContent('#model');
  check(/image/.test(model) && /audio/.test(model), `the page lists the model's modalities: ${model}`);
  // the test checkpoint's context is 256 tokens: short answers keep three turns of history inside it
  await page.click('#settings summary');
  await page.fill('#max-tokens', '12');
  await page.click('#settings summary');

  /** Sends what is in the composer and waits for the n-th answer to finish; returns what the page shows of it. */
  async function ask(n) {
    await page.click('#send');
    const answer = page.locator('.msg.assistant').nth(n - 1);
    await answer.waitFor();
    await page.waitForFunction((i) => document.querySelectorAll('.msg.assistant')[i].dataset.done === 'true', n - 1);
    const shown = await answer.evaluate((e) => ({ error: e.dataset.error ?? null, chunks: Number(e.dataset.chunks),
      text: e.textContent }));
    check(shown.error === null, `answer ${n} has no error: ${shown.error}`);
    check(shown.chunks >= 1, `answer ${n} streamed in (${shown.chunks} chunks)`);
    check(/prompt \+ \d+ answer tokens/.test(shown.text), `answer ${n} shows its usage: ${shown.text}`);
    console.log(`answer ${n}: ${shown.chunks} chunks: ${JSON.stringify(shown.text)}`);
    return shown;
  }

  // 1. an uploaded image and a typed question
  await page.setInputFiles('#image-file', args.image);
  await page.locator('#attachments .chip[data-kind="image"]').waitFor();
  await page.fill('#prompt', 'What is in the picture?');
  await ask(1);
  check(await page.locator('.msg.user').nth(0).locator('img').count() === 1, 'the question shows the image thumbnail');
  check(await page.locator('#attachments .chip').count() === 0, 'the attachment was sent');

  // 2. speech recorded from the (fake) microphone: MediaRecorder, then WAV at 16 kHz in the page
  await page.click('#record');
  await page.waitForFunction(() => document.getElementById('record').classList.contains('recording'));
  await page.waitForTimeout(1500);
  await page.click('#record');
  await page.locator('#attachments .chip[data-kind="audio"]').waitFor();
  const chip = await page.textContent('#attachments .chip[data-kind="audio"]');
  check(/recording \(\d+\.\d s\)/.test(chip), `the recording is attached: ${chip}`);
  await ask(2);
  check(await page.locator('.msg.user').nth(1).locator('audio').count() === 1, 'the spoken question shows a player');

  // 3. an uploaded WAV with a typed instruction
  await page.setInputFiles('#audio-file', args.wav);
  await page.locator('#attachments .chip[data-kind="audio"]').waitFor();
  await page.fill('#prompt', 'Please transcribe the speech.');
  await ask(3);

  check(await page.locator('.msg.user').count() === 3 && await page.locator('.msg.assistant').count() === 3,
      'the conversation keeps all three turns');
  await page.screenshot({ path: args.screenshot, fullPage: true });
  console.log(`screenshot: ${args.screenshot}`);

  // 4. a new chat clears the history
  await page.click('#new-chat');
  check(await page.locator('.msg').count() === 0, 'New chat clears the conversation');
  check(problems.length === 0, `no page errors: ${problems.join('; ')}`);
  console.log('browser page: all checks passed');
}
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  await context.grantPermissions(['microphone'], { origin: args['base-url'] });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.setDefaultTimeout(120_000);

  await page.goto(args['base-url']);
  if (args['text-only']) {
    await textOnly(page);
    await page.screenshot({ path: args.screenshot, fullPage: true });
    // the page's first /v1/models answered 401 before the key was given: the console reports that one
    check(problems.filter((p) => !/401/.test(p)).length === 0, `no page errors: ${problems.join('; ')}`);
    console.log('browser page (text model, API key): all checks passed');
  } else {
    await mediaFlow(page);
  }
} finally {
  await browser.close();
}
