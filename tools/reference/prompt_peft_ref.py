#!/usr/bin/env python3
"""PEFT prompt tuning (PromptTuningConfig) and P-tuning (PromptEncoderConfig, MLP and LSTM) on the tiny random
Llama (tests/data/tiny_llama) and the tiny BERT (tests/data/tiny_bert): the loss, the gradient of every trainable
tensor and the outputs of one fixed batch, and each adapter as PEFT saves it, for tests/test_prompt_tuning.c
(hone's prompt-tuning and p-tuning methods must meet DESIGN.md section 7's rows).

Cases (fp32, eager attention, eval mode: no dropout anywhere; one thread; seeded):
    llama_pt     PromptTuningConfig CAUSAL_LM, 5 virtual tokens, RANDOM init (nn.Embedding's N(0, 1))
    llama_pe     PromptEncoderConfig CAUSAL_LM, 5 virtual tokens, MLP encoder, encoder_hidden_size 32
    llama_lstm   PromptEncoderConfig CAUSAL_LM, 5 virtual tokens, LSTM encoder, encoder_hidden_size 24
    bert_pt      PromptTuningConfig FEATURE_EXTRACTION (BertModel), 4 virtual tokens, RANDOM
    bert_pe      PromptEncoderConfig FEATURE_EXTRACTION, 4 virtual tokens, MLP, encoder_hidden_size 32
Every trainable tensor keeps PEFT's / PyTorch's own initialisation (the values are in golden.bin, so hone starts
from them).

The Llama batch: B 2 rows of T 12 random ids; labels = ids with labels[:, 0] = -100 and labels[0, 1:4] = -100.
labels[:, 0] is left out on purpose: PEFT prepends -100 labels for the virtual tokens, so with labels[:, 0] kept
its loss would also count predicting the first real token from the last virtual token's output, a row hone's
hidden states do not return (hone's batches never put a row's first token in the loss). The loss is transformers'
causal-LM mean. The BERT batch: TEXTS through the tokenizer, padded; BERT has no loss of its own, so the loss is
sum over valid (b, t) of sum_c h[b, t, c] * W[b, t, c] with h the last hidden state of the real tokens (the virtual
rows dropped) and W fixed random weights (in golden.bin).

Regenerate (not run by `make test`), from the source root:
    /root/.cache/hone/refvenv/bin/python tools/reference/prompt_peft_ref.py [OUT]
(OUT defaults to tests/data/prompt). Versions used for the committed files: torch 2.15.0, transformers 5.24.0,
peft 0.21.2 (printed when run), on the CPU.

Output:
    OUT/CASE/adapter_config.json, adapter_model.safetensors    PEFT's save_pretrained of each case
                                   (base_model_name_or_path rewritten to the base's folder name)
    OUT/golden.bin                 tools/reference/tiny_llama_ref.py's layout ("HNGT", version 1):
        llama.input_ids i32 (B, T)      llama.labels i32 (B, T)
        bert.input_ids  i32 (B, T)      bert.lens i32 (B)      bert.weights f32 (B, T, C)
        CASE.trainable  i32 (1)         PeftModel.get_nb_trainable_parameters()[0] (print_trainable_parameters)
        CASE.loss       f32 (1)
        CASE.init.NAME  f32             every trainable tensor before the step, NAME as PEFT names the parameter
                                        without the adapter name: prompt_encoder.embedding.weight,
                                        prompt_encoder.mlp_head.0.weight, prompt_encoder.lstm_head.weight_ih_l0, ...
        CASE.grad.NAME  f32             d loss / d NAME
        CASE.prompt     f32 (n, C)      the saved prompt_embeddings (P-tuning: the encoder's output)
        CASE.out        f32             Llama: logits of the real tokens (B, T, V); BERT: their last hidden states
                                        (B, T, C)
        CASE.out.loaded f32             the same after PeftModel.from_pretrained(OUT/CASE) over a fresh base
        text.N.ids      i32 (N)         PromptTuningInit.TEXT on the tiny BERT with its tokenizer, N virtual tokens
        text.N.prompt   f32 (N, C)      (N 7: TEXT_SHORT repeated; N 3: TEXT_LONG truncated)

Check mode: PEFT loads adapter directories that hone wrote and gives the logits hone gave:
    /root/.cache/hone/refvenv/bin/python tools/reference/prompt_peft_ref.py --check DIR
DIR is what `tests/test_prompt_tuning --write DIR` writes: DIR/ids.i32 (2 x 12 int32), and for each of
prompt-tuning and p-tuning DIR/NAME/ (hone's saved adapter over tests/data/tiny_llama) with DIR/NAME/logits.f32
(2 x 12 x 256 float32, hone's logits of the real tokens); and DIR/prompt-tuning-text/, hone's prompt-tuning
adapter with TEXT init over tests/data/tiny_bert, with ids.i32 (one row) and hidden.f32 (its last hidden states).
Prints the largest differences and exits non-zero above 1e-4.
"""
import json
import os
import sys

import numpy as np
import peft
import torch
import transformers
from peft import PeftModel, PromptEncoderConfig, PromptTuningConfig, get_peft_model
from transformers import AutoModel, AutoModelForCausalLM, BertTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_bert_ref import save_golden  # noqa: E402

LLAMA = "tests/data/tiny_llama"
BERT = "tests/data/tiny_bert"
B, T = 2, 12
TEXTS = ["The cat sat on the mat.", "hello world", "dog running!"]
TEXT_SHORT = "the cat"
TEXT_LONG = "The cat sat on the mat, hello world"


def llama():
    return AutoModelForCausalLM.from_pretrained(LLAMA, dtype=torch.float32, attn_implementation="eager").eval()


def bert():
    return AutoModel.from_pretrained(BERT, dtype=torch.float32, attn_implementation="eager").eval()


def cases():
    return {
        "llama_pt": (llama, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5)),
        "llama_pe": (llama, PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=5, encoder_hidden_size=32)),
        "llama_lstm": (llama, PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=5, encoder_hidden_size=24,
                                                  encoder_reparameterization_type="LSTM")),
        "bert_pt": (bert, PromptTuningConfig(task_type="FEATURE_EXTRACTION", num_virtual_tokens=4)),
        "bert_pe": (bert, PromptEncoderConfig(task_type="FEATURE_EXTRACTION", num_virtual_tokens=4,
                                              encoder_hidden_size=32)),
    }


def param_name(name):
    return name.replace(".default.", ".")


def run(pm, is_llama, batch):
    """(loss, outputs of the real tokens) of the batch through PEFT model pm."""
    n = pm.active_peft_config.num_virtual_tokens
    if is_llama:
        ids, labels = batch
        out = pm(input_ids=ids, labels=labels)
        return out.loss, out.logits[:, n:]
    ids, mask, w = batch
    h = pm(input_ids=ids, attention_mask=mask).last_hidden_state[:, n:]
    return (h * w * mask[..., None]).sum(), h


def check(run_dir):
    ids = torch.from_numpy(np.fromfile(os.path.join(run_dir, "ids.i32"), np.int32).reshape(B, T).astype(np.int64))
    worst = 0.0
    for name in ("prompt-tuning", "p-tuning"):
        d = os.path.join(run_dir, name)
        want = np.fromfile(os.path.join(d, "logits.f32"), np.float32).reshape(B, T, -1)
        pm = PeftModel.from_pretrained(llama(), d).eval()
        n = pm.active_peft_config.num_virtual_tokens
        with torch.no_grad():
            got = pm(input_ids=ids).logits[:, n:].numpy()
        diff = float(np.abs(got - want).max())
        worst = max(worst, diff)
        print(f"PEFT {peft.__version__} loaded hone's {name} adapter ({pm.active_peft_config.peft_type.value}, "
              f"{n} virtual tokens): logits within {diff:.3g} of hone's")
    d = os.path.join(run_dir, "prompt-tuning-text")
    ids = torch.from_numpy(np.fromfile(os.path.join(d, "ids.i32"), np.int32).astype(np.int64))[None]
    want = np.fromfile(os.path.join(d, "hidden.f32"), np.float32).reshape(ids.shape[1], -1)
    pm = PeftModel.from_pretrained(bert(), d).eval()
    n = pm.active_peft_config.num_virtual_tokens
    with torch.no_grad():
        got = pm(input_ids=ids).last_hidden_state[0, n:].numpy()
    diff = float(np.abs(got - want).max())
    worst = max(worst, diff)
    print(f"PEFT {peft.__version__} loaded hone's prompt-tuning adapter on BERT (prompt_tuning_init "
          f"{pm.active_peft_config.prompt_tuning_init}): hidden states within {diff:.3g} of hone's")
    return 0 if worst <= 1e-4 else 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/prompt"
    print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    ids = torch.randint(3, 256, (B, T))
    labels = ids.clone()
    labels[:, 0] = -100
    labels[0, 1:4] = -100
    tok = BertTokenizerFast.from_pretrained(BERT)
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    weights = torch.randn(*enc["input_ids"].shape, 64)
    arrays = [("llama.input_ids", ids.numpy().astype(np.int32)), ("llama.labels", labels.numpy().astype(np.int32)),
              ("bert.input_ids", enc["input_ids"].numpy().astype(np.int32)),
              ("bert.lens", enc["attention_mask"].sum(1).numpy().astype(np.int32)), ("bert.weights", weights.numpy())]
    for case, (base, cfg) in cases().items():
        is_llama = case.startswith("llama")
        batch = (ids, labels) if is_llama else (enc["input_ids"], enc["attention_mask"], weights)
        torch.manual_seed(len(arrays))
        pm = get_peft_model(base(), cfg)
        pm.eval()
        trainable = pm.get_nb_trainable_parameters()[0]
        pm.print_trainable_parameters()
        params = [(param_name(n), p) for n, p in pm.named_parameters() if p.requires_grad]
        arrays.append((f"{case}.trainable", np.array([trainable], np.int32)))
        for n, p in params:
            arrays.append((f"{case}.init.{n}", p.detach().numpy().copy()))
        loss, o = run(pm, is_llama, batch)
        loss.backward()
        arrays.append((f"{case}.loss", np.array([loss.item()], np.float32)))
        for n, p in params:
            arrays.append((f"{case}.grad.{n}", p.grad.numpy().copy()))
        arrays.append((f"{case}.prompt", pm.get_prompt_embedding_to_save("default").numpy()))
        arrays.append((f"{case}.out", o.detach().numpy()))
        d = os.path.join(out, case)
        os.makedirs(d, exist_ok=True)
        pm.save_pretrained(d)
        cfg_path = os.path.join(d, "adapter_config.json")
        c = json.load(open(cfg_path))
        c["base_model_name_or_path"] = os.path.basename(LLAMA if is_llama else BERT)
        json.dump(c, open(cfg_path, "w"), indent=2, sort_keys=True)
        if os.path.exists(os.path.join(d, "README.md")):  # PEFT's model card template: not needed
            os.remove(os.path.join(d, "README.md"))
        with torch.no_grad():
            loaded = PeftModel.from_pretrained(base(), d).eval()
            _, ol = run(loaded, is_llama, batch)
        diff = float((ol - o).abs().max())
        assert diff < 1e-5, diff
        arrays.append((f"{case}.out.loaded", ol.numpy()))
        print(f"{case}: loss {loss.item():.6f}, {len(params)} trainable tensors ({trainable} values), "
              f"loaded within {diff:.2g}")
    for n, text in ((7, TEXT_SHORT), (3, TEXT_LONG)):
        cfg = PromptTuningConfig(task_type="FEATURE_EXTRACTION", num_virtual_tokens=n, prompt_tuning_init="TEXT",
                                 prompt_tuning_init_text=text, tokenizer_name_or_path=BERT)
        base = bert()
        pm = get_peft_model(base, cfg)
        prompt = pm.prompt_encoder["default"].embedding.weight.detach().numpy()
        text_ids = tok(text)["input_ids"]
        want = (text_ids * n)[:n]
        assert np.array_equal(prompt, base.embeddings.word_embeddings.weight[want].detach().numpy())
        arrays += [(f"text.{n}.ids", np.array(want, np.int32)), (f"text.{n}.prompt", prompt)]
    save_golden(os.path.join(out, "golden.bin"), arrays)
    print(f"wrote {out}: {len(arrays)} arrays")


if __name__ == "__main__":
    main()
