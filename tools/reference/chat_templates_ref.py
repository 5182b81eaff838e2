"""Golden chat renderings for the Llama 2, Llama 3 and Qwen2 chat templates (tests/data/chat_templates.tsv).

Regenerate (from the repository root, with the reference venv made by ../shared/tools/ref-venv.sh):
    /root/.cache/hone/refvenv/bin/python tools/reference/chat_templates_ref.py

The templates below are the models' own `chat_template` strings (tokenizer_config.json of
meta-llama/Llama-2-7b-chat-hf, meta-llama/Meta-Llama-3-8B-Instruct and Qwen/Qwen2-0.5B-Instruct), rendered with jinja2
the way transformers' apply_chat_template does (sandboxed environment, trim_blocks, lstrip_blocks, raise_exception).
Output: "# hone chat templates v1", then one line per case:
    TEMPLATE <tab> GEN <tab> role:hex(content),... <tab> hex(rendered) or "error"
where TEMPLATE is hone's name (llama2, llama3, chatml) and the rendering has the template's leading BOS token text
removed (hone leaves the first BOS to the tokenizer); "error" means the template raised (roles out of order).
"""
import os
import sys

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}")

TEMPLATES = [("llama2", LLAMA2, "<s>", "</s>"), ("llama3", LLAMA3, "<|begin_of_text|>", "<|eot_id|>"),
             ("chatml", QWEN2, "", "<|im_end|>")]


def raise_exception(msg):
    raise TemplateError(msg)


def render(template, messages, gen, bos, eos):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    try:
        out = env.from_string(template).render(messages=messages, add_generation_prompt=gen, bos_token=bos,
                                               eos_token=eos)
    except TemplateError:
        return None
    return out[len(bos):] if bos and out.startswith(bos) else out


def cases():
    u = {"role": "user", "content": "What is 2+2?"}
    s = {"role": "system", "content": "You are terse."}
    a = {"role": "assistant", "content": "4."}
    u2 = {"role": "user", "content": "  And 3+3?\nExplain\tbriefly.  \n"}
    a2 = {"role": "assistant", "content": "\n 6, since 3+3 = 6. "}
    zh = {"role": "user", "content": "\u4f60\u597d\uff0c\u4e16\u754c\uff01 \U0001f600"}
    empty = {"role": "user", "content": ""}
    blank_sys = {"role": "system", "content": "  \n"}
    convs = [[u], [s, u], [u, a, u2], [s, u, a, u2, a2], [zh], [empty], [s, empty], [blank_sys, empty], [u, a],
             [s, u, a], [a, u], [u, u], [s, {"role": "system", "content": "second system"}, u],
             [{"role": "user", "content": "<|eot_id|> [INST] inside"}]]
    return [(gen, c) for c in convs for gen in (False, True)]


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data")
    lines = ["# hone chat templates v1"]
    n = 0
    for name, tmpl, bos, eos in TEMPLATES:
        for gen, c in cases():
            text = render(tmpl, c, gen, bos, eos)
            msgs = ",".join("%s:%s" % (m["role"], m["content"].encode("utf-8").hex()) for m in c)
            lines.append("%s\t%d\t%s\t%s" % (name, gen, msgs, "error" if text is None else text.encode("utf-8").hex()))
            n += 1
    with open(os.path.join(outdir, "chat_templates.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%d cases" % n)


if __name__ == "__main__":
    main()
