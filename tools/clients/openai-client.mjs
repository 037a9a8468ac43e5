// The official `openai` npm client, unchanged, against `./xllm serve`: text, an image, audio (a spoken question),
// image + audio in one turn, and video, each asked non-streamed and streamed. Checks the OpenAI shapes, that the
// streamed deltas join to the non-streamed answer (greedy decoding), that the usage chunk counts the streamed tokens,
// and that the server's errors reach the client as its own error classes. Exits 1 on the first failed check.
//
//   node tools/clients/openai-client.mjs --base-url http://127.0.0.1:8080/v1 \
//        --image photo.png --wav question.wav [--video clip.mp4] [--api-key K]
import OpenAI from 'openai';
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';

function options(argv) {
  const out = {};
  for (let i = 2; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument '${argv[i]}'`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const required of ['base-url', 'image', 'wav']) {
    if (!out[required]) throw new Error(`--${required} is required`);
  }
  return out;
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const IMAGE_TYPES = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp' };
const VIDEO_TYPES = { '.mp4': 'video/mp4', '.avi': 'video/x-msvideo' };

function dataUrl(path, types) {
  const type = types[extname(path).toLowerCase()];
  if (!type) throw new Error(`${path}: unknown media type`);
  return `data:${type};base64,${readFileSync(path).toString('base64')}`;
}

const args = options(process.argv);
const client = new OpenAI({ baseURL: args['base-url'], apiKey: args['api-key'] ?? 'unused', maxRetries: 0,
  timeout: 120_000 });

const image = { type: 'image_url', image_url: { url: dataUrl(args.image, IMAGE_TYPES) } };
const audio = { type: 'input_audio', input_audio: { data: readFileSync(args.wav).toString('base64'), format: 'wav' } };
const text = (t) => ({ type: 'text', text: t });

const models = await client.models.list();
check(models.data.length === 1, `one served model, got ${JSON.stringify(models.data)}`);
const model = models.data[0].id;
console.log(`model ${model} reads ${JSON.stringify(models.data[0].modalities)}`);

const cases = [
  ['text', 'Say hello.'],
  ['image', [text('What is in the picture?'), image]],
  ['audio', [audio]],
  ['image + audio', [image, audio]],
];
if (args.video) {
  cases.push(['video', [text('Which way does it move?'),
    { type: 'video_url', video_url: { url: dataUrl(args.video, VIDEO_TYPES) } }]]);
}

const MAX_TOKENS = 8;
for (const [name, content] of cases) {
  const messages = [{ role: 'user', content }];
  const started = Date.now();
  const whole = await client.chat.completions.create({ model, messages, max_tokens: MAX_TOKENS, temperature: 0 });
  check(whole.object === 'chat.completion', `${name}: object is ${whole.object}`);
  check(whole.model === model, `${name}: model ${whole.model}`);
  const choice = whole.choices[0];
  check(whole.choices.length === 1 && choice.message.role === 'assistant', `${name}: one assistant choice`);
  check(typeof choice.message.content === 'string', `${name}: content is text`);
  check(['stop', 'length'].includes(choice.finish_reason), `${name}: finish_reason ${choice.finish_reason}`);
  const usage = whole.usage;
  check(usage.prompt_tokens > 0 && usage.completion_tokens > 0 && usage.completion_tokens <= MAX_TOKENS
      && usage.total_tokens === usage.prompt_tokens + usage.completion_tokens, `${name}: usage ${JSON.stringify(usage)}`);
  check(choice.finish_reason !== 'length' || usage.completion_tokens === MAX_TOKENS, `${name}: length at the budget`);

  const stream = await client.chat.completions.create({ model, messages, max_tokens: MAX_TOKENS, temperature: 0,
    stream: true, stream_options: { include_usage: true } });
  let streamed = '';
  let finish = null;
  let streamUsage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    check(chunk.object === 'chat.completion.chunk', `${name}: chunk object ${chunk.object}`);
    if (chunk.usage) streamUsage = chunk.usage;
    for (const c of chunk.choices) {
      streamed += c.delta?.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  check(streamed === choice.message.content,
      `${name}: streamed ${JSON.stringify(streamed)} equals the answer ${JSON.stringify(choice.message.content)}`);
  check(finish === choice.finish_reason, `${name}: streamed finish_reason ${finish}`);
  check(streamUsage && streamUsage.completion_tokens === usage.completion_tokens
      && streamUsage.prompt_tokens === usage.prompt_tokens, `${name}: usage chunk ${JSON.stringify(streamUsage)}`);
  console.log(`${name}: ${usage.prompt_tokens} prompt + ${usage.completion_tokens} answer tokens in ${chunks} chunks, `
      + `${Date.now() - started} ms: ${JSON.stringify(streamed)}`);
}

async function expectError(name, errorClass, status, request) {
  try {
    await request();
  } catch (e) {
    check(e instanceof errorClass && e.status === status, `${name}: got ${e.constructor.name} ${e.status}: ${e.message}`);
    check(typeof e.message === 'string' && e.message.length > 10, `${name}: a message`);
    console.log(`${name}: ${e.constructor.name} ${e.status}: ${e.message}`);
    return;
  }
  throw new Error(`check failed: ${name} raised no error`);
}

await expectError('unknown model', OpenAI.NotFoundError, 404, () => client.chat.completions.create(
  { model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }));
await expectError('bad base64', OpenAI.BadRequestError, 400, () => client.chat.completions.create(
  { model, messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: '%%%not base64',
    format: 'wav' } }] }] }));
console.log('openai npm client: all checks passed');
