// The chat page of `./xllm serve`: one conversation with the served model through its own OpenAI-compatible API.
// Images and videos go as data: URLs; audio (uploaded, or recorded with MediaRecorder) is decoded by the browser,
// mixed to mono, resampled to 16 kHz and sent as a WAV `input_audio` part. Answers stream in over SSE and are shown
// as Markdown built from DOM nodes (no HTML from the model ever reaches innerHTML). No external resources.
'use strict';

const $ = (id) => document.getElementById(id);
const SAMPLE_RATE = 16000;

const state = {
  model: null,
  modalities: ['text'],
  history: [],      // the conversation in API form, media included: it is sent whole with every turn
  pending: [],      // attachments for the next message: {kind, name, url, part}
  recorder: null,
  controller: null,
};

// ---- the server ----------------------------------------------------------------------------------------------

function headers() {
  const h = { 'Content-Type': 'application/json' };
  const key = $('api-key').value.trim();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function apiError(response) {
  const body = await response.json().catch(() => null);
  const message = body?.error?.message ?? `${response.status} ${response.statusText}`;
  if (response.status === 401) return new Error(`${message} (enter the key under Settings)`);
  if (/context/.test(message)) return new Error(`${message} (start a New chat, or lower the answer tokens)`);
  if (response.status === 429) return new Error(`${message} (the server is busy; try again in a moment)`);
  return new Error(message);
}

async function connect() {
  try {
    const response = await fetch('/v1/models', { headers: headers() });
    if (!response.ok) throw await apiError(response);
    const model = (await response.json()).data[0];
    state.model = model.id;
    state.modalities = model.modalities ?? ['text'];
    $('model').textContent = `${model.id} · reads ${state.modalities.join(', ')}`;
    $('attach-image').disabled = !state.modalities.includes('image');
    $('attach-video').disabled = !state.modalities.includes('video');
    $('attach-audio').disabled = !state.modalities.includes('audio');
    $('record').disabled = !state.modalities.includes('audio') || !navigator.mediaDevices?.getUserMedia;
    if (state.modalities.includes('audio') && !navigator.mediaDevices?.getUserMedia) {
      $('record').title = 'Recording needs https or localhost';
    }
    $('send').disabled = false;
    setStatus('');
  } catch (e) {
    $('model').textContent = 'not connected';
    setStatus(`Cannot reach the model: ${e.message}`, true);
  }
}

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

// ---- media ---------------------------------------------------------------------------------------------------

const VIDEO_TYPES = { mp4: 'video/mp4', m4v: 'video/mp4', avi: 'video/x-msvideo' };

function readDataUrl(blob, type) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = reader.result;
      // a file the browser cannot type is labelled with the type we know it by
      resolve(type ? `data:${type};base64,${url.slice(url.indexOf(',') + 1)}` : url);
    };
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

/** Decodes any audio the browser can (WAV, MP3, OGG, WebM/Opus), mixes it to mono and writes a 16 kHz PCM16 WAV. */
async function toWav16k(blob, name) {
  const context = new OfflineAudioContext(1, 1, SAMPLE_RATE);
  let audio;
  try {
    audio = await context.decodeAudioData(await blob.arrayBuffer()); // resampled to the context's 16 kHz
  } catch (e) {
    throw new Error(`${name}: the browser cannot decode this audio (${e.message || e.name})`);
  }
  if (audio.length === 0) throw new Error(`${name}: no audio in it`);
  const mono = new Float32Array(audio.length);
  for (let c = 0; c < audio.numberOfChannels; c++) {
    const channel = audio.getChannelData(c);
    for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / audio.numberOfChannels;
  }
  const wav = new DataView(new ArrayBuffer(44 + mono.length * 2));
  const ascii = (offset, text) => [...text].forEach((ch, i) => wav.setUint8(offset + i, ch.charCodeAt(0)));
  ascii(0, 'RIFF');
  wav.setUint32(4, 36 + mono.length * 2, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  wav.setUint32(16, 16, true);
  wav.setUint16(20, 1, true);              // PCM
  wav.setUint16(22, 1, true);              // mono
  wav.setUint32(24, SAMPLE_RATE, true);
  wav.setUint32(28, SAMPLE_RATE * 2, true);
  wav.setUint16(32, 2, true);
  wav.setUint16(34, 16, true);
  ascii(36, 'data');
  wav.setUint32(40, mono.length * 2, true);
  for (let i = 0; i < mono.length; i++) {
    const s = Math.max(-1, Math.min(1, mono[i]));
    wav.setInt16(44 + i * 2, Math.round(s < 0 ? s * 0x8000 : s * 0x7fff), true);
  }
  return { blob: new Blob([wav.buffer], { type: 'audio/wav' }), seconds: audio.length / SAMPLE_RATE };
}

async function attach(kind, file) {
  try {
    if (kind === 'image') {
      const url = await readDataUrl(file);
      addPending({ kind, name: file.name, url, part: { type: 'image_url', image_url: { url } } });
    } else if (kind === 'video') {
      const extension = file.name.split('.').pop().toLowerCase();
      const url = await readDataUrl(file, file.type || VIDEO_TYPES[extension]);
      addPending({ kind, name: file.name, url: URL.createObjectURL(file), part: { type: 'video_url', video_url: { url } } });
    } else {
      const wav = await toWav16k(file, file.name);
      await addAudio(wav, `${file.name} (${wav.seconds.toFixed(1)} s)`);
    }
    setStatus('');
  } catch (e) {
    setStatus(e.message, true);
  }
}

async function addAudio(wav, name) {
  const dataUrl = await readDataUrl(wav.blob);
  const data = dataUrl.slice(dataUrl.indexOf(',') + 1);
  addPending({ kind: 'audio', name, url: URL.createObjectURL(wav.blob), part: { type: 'input_audio', input_audio: { data, format: 'wav' } } });
}

function addPending(attachment) {
  state.pending.push(attachment);
  renderPending();
}

function renderPending() {
  const box = $('attachments');
  box.replaceChildren();
  state.pending.forEach((a, i) => {
    const chip = el('span', 'chip');
    chip.dataset.kind = a.kind;
    if (a.kind === 'image') chip.append(mediaElement(a));
    chip.append(document.createTextNode(`${a.kind}: ${a.name}`));
    const remove = el('button');
    remove.type = 'button';
    remove.title = 'Remove';
    remove.textContent = '×';
    remove.onclick = () => { state.pending.splice(i, 1); renderPending(); };
    chip.append(remove);
    box.append(chip);
  });
}

async function toggleRecording() {
  if (state.recorder) {
    state.recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    setStatus(`The microphone is not available: ${e.message || e.name}`, true);
    return;
  }
  const recorder = new MediaRecorder(stream);
  const chunks = [];
  recorder.ondataavailable = (event) => { if (event.data.size > 0) chunks.push(event.data); };
  recorder.onstop = async () => {
    stream.getTracks().forEach((t) => t.stop());
    state.recorder = null;
    $('record').classList.remove('recording');
    $('record').textContent = 'Record';
    try {
      const wav = await toWav16k(new Blob(chunks, { type: recorder.mimeType }), 'the recording');
      await addAudio(wav, `recording (${wav.seconds.toFixed(1)} s)`);
      setStatus('');
    } catch (e) {
      setStatus(e.message, true);
    }
  };
  recorder.start();
  state.recorder = recorder;
  $('record').classList.add('recording');
  $('record').textContent = 'Stop recording';
  setStatus('Recording… press "Stop recording" when done.');
}

// ---- rendering -----------------------------------------------------------------------------------------------

function el(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

function mediaElement(a) {
  const node = el(a.kind === 'image' ? 'img' : a.kind);
  node.src = a.url;
  if (a.kind === 'image') node.alt = a.name;
  else node.controls = true;
  return node;
}

function scrollDown() {
  const main = $('messages');
  main.scrollTop = main.scrollHeight;
}

function showUser(text, attachments) {
  const bubble = el('div', 'msg user');
  if (attachments.length) {
    const media = el('div', 'media');
    attachments.forEach((a) => media.append(mediaElement(a)));
    bubble.append(media);
  }
  if (text) bubble.append(markdown(text));
  $('messages').append(bubble);
  scrollDown();
  return bubble;
}

/** Inline Markdown: `code`, **bold**, *italic*, [text](http(s) link). */
function inline(text, parent) {
  const pattern = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*)|(\[[^\]]+\]\(https?:\/\/[^)\s]+\))/g;
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
    const token = m[0];
    let node;
    if (m[1]) {
      node = el('code');
      node.textContent = token.slice(1, -1);
    } else if (m[2]) {
      node = el('strong');
      inline(token.slice(2, -2), node);
    } else if (m[3]) {
      node = el('em');
      inline(token.slice(1, -1), node);
    } else {
      const close = token.indexOf('](');
      node = el('a');
      node.href = token.slice(close + 2, -1);
      node.rel = 'noopener noreferrer';
      node.target = '_blank';
      node.textContent = token.slice(1, close);
    }
    parent.append(node);
    last = m.index + token.length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

/** Block Markdown: fenced code, headings, bullet and numbered lists, paragraphs. Returns a fragment. */
function markdown(text) {
  const out = document.createDocumentFragment();
  const lines = text.split('\n');
  let paragraph = null;
  let list = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('```')) {
      const code = [];
      for (i++; i < lines.length && !lines[i].startsWith('```'); i++) code.push(lines[i]);
      const pre = el('pre');
      const c = el('code');
      c.textContent = code.join('\n');
      pre.append(c);
      out.append(pre);
      paragraph = list = null;
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    const bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
    const numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
    if (heading) {
      const h = el(`h${Math.min(heading[1].length + 2, 6)}`);
      inline(heading[2], h);
      out.append(h);
      paragraph = list = null;
    } else if (bullet || numbered) {
      const tag = bullet ? 'ul' : 'ol';
      if (!list || list.tagName.toLowerCase() !== tag) {
        list = el(tag);
        out.append(list);
      }
      const item = el('li');
      inline((bullet || numbered)[1], item);
      list.append(item);
      paragraph = null;
    } else if (line.trim() === '') {
      paragraph = list = null;
    } else {
      if (!paragraph) {
        paragraph = el('p');
        out.append(paragraph);
      } else {
        paragraph.append(el('br'));
      }
      inline(line, paragraph);
      list = null;
    }
  }
  return out;
}

// ---- the conversation ----------------------------------------------------------------------------------------

/** Reads a server-sent event stream, calling onEvent with each `data:` payload. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (data && onEvent(data) === false) return;
    }
  }
}

async function send() {
  const text = $('prompt').value.trim();
  if (state.controller || state.recorder || !state.model || (!text && state.pending.length === 0)) return;
  const attachments = state.pending;
  const content = attachments.map((a) => a.part);
  if (text) content.unshift({ type: 'text', text });
  const message = { role: 'user', content: attachments.length ? content : text };
  const userBubble = showUser(text, attachments);
  state.history.push(message);
  state.pending = [];
  renderPending();
  $('prompt').value = '';

  const bubble = el('div', 'msg assistant');
  bubble.dataset.done = 'false';
  bubble.dataset.chunks = '0';
  $('messages').append(bubble);
  scrollDown();
  const controller = new AbortController();
  state.controller = controller;
  $('send').disabled = true;
  $('stop').disabled = false;
  setStatus('Thinking…');

  let answer = '';
  let usage = null;
  const started = performance.now();
  let firstToken = null;
  const render = () => {
    bubble.replaceChildren(markdown(answer));
    scrollDown();
  };
  try {
    const response = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: headers(),
      signal: controller.signal,
      body: JSON.stringify({
        model: state.model,
        messages: state.history,
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: Number($('max-tokens').value) || 256,
        temperature: Number($('temperature').value) || 0,
      }),
    });
    if (!response.ok) throw await apiError(response);
    setStatus('');
    await readEvents(response.body, (data) => {
      if (data === '[DONE]') return false;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) usage = chunk.usage;
      const piece = chunk.choices?.[0]?.delta?.content;
      if (piece) {
        firstToken ??= performance.now();
        answer += piece;
        bubble.dataset.chunks = String(Number(bubble.dataset.chunks) + 1);
        render();
      }
      return true;
    });
    state.history.push({ role: 'assistant', content: answer });
    render();
    if (usage) {
      const note = el('span', 'usage');
      const seconds = (performance.now() - started) / 1000;
      note.textContent = `${usage.prompt_tokens} prompt + ${usage.completion_tokens} answer tokens · first token `
          + `${((firstToken ?? performance.now()) - started).toFixed(0)} ms · ${seconds.toFixed(1)} s`;
      bubble.append(note);
    }
  } catch (e) {
    if (e.name === 'AbortError') {
      // the server cancels the generation when the stream closes; what came so far stays in the conversation
      state.history.push({ role: 'assistant', content: answer });
      render();
      bubble.dataset.stopped = 'true';
    } else {
      state.history.pop(); // the turn failed: it is not part of the conversation the server sees next
      userBubble.classList.add('failed');
      bubble.dataset.error = e.message;
      bubble.textContent = `Error: ${e.message}`;
      setStatus(e.message, true);
    }
  } finally {
    bubble.dataset.done = 'true';
    state.controller = null;
    $('send').disabled = false;
    $('stop').disabled = true;
  }
}

function newChat() {
  state.controller?.abort();
  state.history = [];
  state.pending = [];
  renderPending();
  $('messages').replaceChildren();
  setStatus('');
  $('prompt').focus();
}

// ---- wiring --------------------------------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  $('api-key').value = localStorage.getItem('xllm.apiKey') ?? '';
  $('api-key').addEventListener('change', () => {
    localStorage.setItem('xllm.apiKey', $('api-key').value.trim());
    connect();
  });
  for (const kind of ['image', 'video', 'audio']) {
    $(`attach-${kind}`).onclick = () => $(`${kind}-file`).click();
    $(`${kind}-file`).onchange = async (event) => {
      for (const file of event.target.files) await attach(kind, file);
      event.target.value = '';
    };
  }
  $('record').onclick = toggleRecording;
  $('stop').onclick = () => state.controller?.abort();
  $('new-chat').onclick = newChat;
  $('composer').onsubmit = (event) => {
    event.preventDefault();
    send();
  };
  $('prompt').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  connect();
});
