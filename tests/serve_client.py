"""OpenAI's own Python client against `hone serve` (run by tests/test_cli_serve.sh, in the venv that
scripts/openai-venv.sh makes).

Decoder server (--base-url): the model list (base + adapter), completions and chat at temperature 0 equal to
`hone generate --exact` (and `--chat`) for the same prompts, streamed chat chunks that join to the whole answer, a
request naming the adapter equal to `hone generate --adapter`, voting (n > 1, "vote": true), and the client's
exceptions for an unknown model, a bad max_tokens and a wrong API key.
Encoder server (--embed-url): one vector from /v1/embeddings (as the client asks it: base64) against `hone embed`.

Prints one line per check and exits 1 when any failed.
"""
import argparse
import json
import re
import subprocess
import sys

import openai
from openai import OpenAI

failed = 0


def check(name, ok, detail=""):
    global failed
    print(("ok     " if ok else "FAILED ") + name + ("" if ok else ": " + detail))
    if not ok:
        failed += 1


def hone_generate(args, prompt, n, chat=False, adapter=None):
    cmd = [args.hone, "generate", "-m", args.model, "-p", prompt, "-n", str(n), "--temp", "0", "--exact",
           "--threads", str(args.threads)]
    if chat:
        cmd.append("--chat")
    if adapter:
        cmd += ["--adapter", adapter]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return out[:-1] if out.endswith("\n") else out  # generate ends its text with one newline


def decoder_checks(args):
    key = args.api_key or "none"
    client = OpenAI(base_url=args.base_url, api_key=key, max_retries=0, timeout=120)
    adapter_name, adapter_dir = args.adapter.split("=", 1)

    ids = [m.id for m in client.models.list().data]
    check("models.list: the base model and the adapter", ids == [args.model, adapter_name], str(ids))

    n = args.n_predict
    prompts = ["The capital of France is", "def fibonacci(n):", "1, 2, 3, 4,"]
    for prompt in prompts[:1] if args.quick else prompts:
        want = hone_generate(args, prompt, n)
        r = client.completions.create(model=args.model, prompt=prompt, max_tokens=n, temperature=0)
        got = r.choices[0].text
        check(f"completions {prompt!r} == hone generate --exact", got == want, f"{got!r} != {want!r}")
    check("completions: usage", r.usage.completion_tokens <= n and r.usage.prompt_tokens > 0 and
          r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, str(r.usage))

    question = "What is the capital of Zorbia?"
    want = hone_generate(args, question, n, chat=True)
    r = client.chat.completions.create(model=args.model, messages=[{"role": "user", "content": question}],
                                       max_tokens=n, temperature=0)
    whole = r.choices[0].message.content
    check("chat == hone generate --chat --exact", whole == want, f"{whole!r} != {want!r}")
    check("chat: role and finish_reason", r.choices[0].message.role == "assistant" and
          r.choices[0].finish_reason in ("stop", "length"), str(r.choices[0]))

    chunks, finish, usage = [], None, None
    stream = client.chat.completions.create(model=args.model, messages=[{"role": "user", "content": question}],
                                            max_tokens=n, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                chunks.append(c.delta.content)
            if c.finish_reason:
                finish = c.finish_reason
    check("streamed chat: the chunks join to the whole answer", "".join(chunks) == whole,
          f"{''.join(chunks)!r} != {whole!r}")
    check("streamed chat: a finish_reason and the usage", finish in ("stop", "length") and usage is not None and
          usage.completion_tokens == r.usage.completion_tokens, f"{finish} {usage}")

    want_ad = hone_generate(args, question, n, chat=True, adapter=adapter_dir)
    r = client.chat.completions.create(model=adapter_name, messages=[{"role": "user", "content": question}],
                                       max_tokens=n, temperature=0)
    got = r.choices[0].message.content
    check("chat with the adapter == hone generate --chat --adapter", got == want_ad, f"{got!r} != {want_ad!r}")
    if not args.quick:  # a few tokens may agree; eight did not for the test's adapter
        check("the adapter answers otherwise than the base", got != whole, f"both {got!r}")
    check("the response names the adapter", r.model == adapter_name, r.model)

    r = client.completions.create(model=args.model, prompt="Q: What is 3 + 4?\nA: The answer is", max_tokens=6,
                                  temperature=1.0, seed=3, n=4, extra_body={"vote": True, "answer_regex": r"(\d+)"})
    vote = (r.model_extra or {}).get("vote")
    answers = [(re.findall(r"(\d+)", c.text) or [None])[-1] for c in r.choices]
    counted = [a for a in answers if a is not None]
    want = max(counted, key=lambda a: (counted.count(a), -answers.index(a))) if counted else None
    check("voting: 4 choices, the majority of their answers", len(r.choices) == 4 and vote is not None and
          vote["of"] == 4 and vote["answer"] == want and vote["count"] == (answers.count(want) if want else 0) and
          (want is None or answers[vote["choice"]] == want), f"{json.dumps(vote)} answers {answers}")

    try:
        client.completions.create(model="no-such-model", prompt="x", max_tokens=2)
        check("unknown model: NotFoundError", False, "no exception")
    except openai.NotFoundError as e:
        check("unknown model: NotFoundError (model_not_found)", e.code == "model_not_found", str(e))
    try:
        client.completions.create(model=args.model, prompt="x", max_tokens=0)
        check("max_tokens 0: BadRequestError", False, "no exception")
    except openai.BadRequestError as e:
        check("max_tokens 0: BadRequestError naming the field", e.param == "max_tokens", str(e))
    if args.api_key:
        bad = OpenAI(base_url=args.base_url, api_key=args.api_key + "x", max_retries=0)
        try:
            bad.models.list()
            check("wrong API key: AuthenticationError", False, "no exception")
        except openai.AuthenticationError as e:
            check("wrong API key: AuthenticationError", e.status_code == 401, str(e))


def encoder_checks(args):
    client = OpenAI(base_url=args.embed_url, api_key="none", max_retries=0, timeout=60)
    texts = ["the cat sat on the mat.", "hello world!"]
    r = client.embeddings.create(model=args.embed_model, input=texts)
    check("embeddings: one vector per input, in order", len(r.data) == 2 and [d.index for d in r.data] == [0, 1],
          str(len(r.data)))
    with open(args.embed_ref) as f:
        ref = [json.loads(line) for line in f]
    for i in range(2):
        v, w = r.data[i].embedding, ref[i]
        d = max(abs(a - b) for a, b in zip(v, w)) if len(v) == len(w) else float("inf")
        check(f"embedding {i} == hone embed (max diff {d:.2e})", d < 1e-6, f"{len(v)} vs {len(w)} values")
    r2 = client.embeddings.create(model=args.embed_model, input=texts[0], encoding_format="float")
    d = max(abs(a - b) for a, b in zip(r2.data[0].embedding, r.data[0].embedding))
    check("embeddings: float (9 digits) and base64 give the same vector", d < 1e-6, f"max diff {d}")
    try:
        client.completions.create(model=args.embed_model, prompt="x", max_tokens=2)
        check("an encoder refuses completions", False, "no exception")
    except openai.BadRequestError as e:
        check("an encoder refuses completions (400, model_is_encoder)", e.code == "model_is_encoder", str(e))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hone", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--base-url")
    ap.add_argument("--adapter", help="NAME=DIR, loaded by the server")
    ap.add_argument("--api-key")
    ap.add_argument("--n-predict", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="one completion prompt (sanitizer builds)")
    ap.add_argument("--embed-url")
    ap.add_argument("--embed-model")
    ap.add_argument("--embed-ref", help="hone embed --json of the two texts")
    args = ap.parse_args()
    if args.base_url:
        decoder_checks(args)
    if args.embed_url:
        encoder_checks(args)
    print(f"{failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
