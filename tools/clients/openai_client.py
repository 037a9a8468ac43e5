"""The official `openai` Python client, unchanged, against `./xllm serve`.

Asks text, an image, audio (a spoken question), image + audio in one turn, and video, each non-streamed and
streamed; checks the OpenAI shapes, that the streamed deltas join to the non-streamed answer (greedy decoding), that
the usage chunk counts the streamed tokens, and that the server's errors arrive as the client's own exception
classes. Exits 1 on the first failed check.

    tools/clients/.venv/bin/python tools/clients/openai_client.py --base-url http://127.0.0.1:8080/v1 \
        --image photo.png --wav question.wav [--video clip.mp4] [--api-key K]
"""
import argparse
import base64
import pathlib
import sys
import time

import openai

MAX_TOKENS = 8
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
VIDEO_TYPES = {".mp4": "video/mp4", ".avi": "video/x-msvideo"}


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(f"check failed: {message}")


def data_url(path, types):
    kind = types.get(pathlib.Path(path).suffix.lower())
    if kind is None:
        raise CheckFailed(f"{path}: unknown media type")
    return f"data:{kind};base64,{base64.b64encode(pathlib.Path(path).read_bytes()).decode()}"


def ask(client, model, name, content):
    messages = [{"role": "user", "content": content}]
    started = time.monotonic()
    whole = client.chat.completions.create(model=model, messages=messages, max_tokens=MAX_TOKENS, temperature=0)
    check(whole.object == "chat.completion" and whole.model == model, f"{name}: object {whole.object}, model {whole.model}")
    check(len(whole.choices) == 1, f"{name}: one choice")
    choice = whole.choices[0]
    check(choice.message.role == "assistant" and isinstance(choice.message.content, str), f"{name}: assistant text")
    check(choice.finish_reason in ("stop", "length"), f"{name}: finish_reason {choice.finish_reason}")
    usage = whole.usage
    check(usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= MAX_TOKENS
          and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, f"{name}: usage {usage}")

    streamed, finish, stream_usage, chunks = "", None, None, 0
    for chunk in client.chat.completions.create(model=model, messages=messages, max_tokens=MAX_TOKENS, temperature=0,
                                                stream=True, stream_options={"include_usage": True}):
        chunks += 1
        check(chunk.object == "chat.completion.chunk", f"{name}: chunk object {chunk.object}")
        if chunk.usage is not None:
            stream_usage = chunk.usage
        for c in chunk.choices:
            streamed += c.delta.content or ""
            finish = c.finish_reason or finish
    check(streamed == choice.message.content, f"{name}: streamed {streamed!r} equals the answer {choice.message.content!r}")
    check(finish == choice.finish_reason, f"{name}: streamed finish_reason {finish}")
    check(stream_usage is not None and stream_usage.completion_tokens == usage.completion_tokens
          and stream_usage.prompt_tokens == usage.prompt_tokens, f"{name}: usage chunk {stream_usage}")
    print(f"{name}: {usage.prompt_tokens} prompt + {usage.completion_tokens} answer tokens in {chunks} chunks, "
          f"{(time.monotonic() - started) * 1000:.0f} ms: {streamed!r}")


def expect_error(name, error_class, status, request):
    try:
        request()
    except openai.APIStatusError as e:
        check(isinstance(e, error_class) and e.status_code == status, f"{name}: got {type(e).__name__} {e.status_code}")
        print(f"{name}: {type(e).__name__} {e.status_code}: {e.message}")
        return
    raise CheckFailed(f"check failed: {name} raised no error")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--wav", required=True)
    parser.add_argument("--video")
    parser.add_argument("--api-key", default="unused")
    args = parser.parse_args()

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=120)
    models = client.models.list().data
    check(len(models) == 1, f"one served model, got {models}")
    model = models[0].id
    print(f"model {model} reads {getattr(models[0], 'modalities', None)}")

    image = {"type": "image_url", "image_url": {"url": data_url(args.image, IMAGE_TYPES)}}
    audio = {"type": "input_audio",
             "input_audio": {"data": base64.b64encode(pathlib.Path(args.wav).read_bytes()).decode(), "format": "wav"}}
    cases = [("text", "Say hello."),
             ("image", [{"type": "text", "text": "What is in the picture?"}, image]),
             ("audio", [audio]),
             ("image + audio", [image, audio])]
    if args.video:
        cases.append(("video", [{"type": "text", "text": "Which way does it move?"},
                                {"type": "video_url", "video_url": {"url": data_url(args.video, VIDEO_TYPES)}}]))
    for name, content in cases:
        ask(client, model, name, content)

    expect_error("unknown model", openai.NotFoundError, 404, lambda: client.chat.completions.create(
        model="no-such-model", messages=[{"role": "user", "content": "hi"}]))
    expect_error("bad base64", openai.BadRequestError, 400, lambda: client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "%%%not base64", "format": "wav"}}]}]))
    print("openai Python client: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as e:
        print(e, file=sys.stderr)
        sys.exit(1)
