#!/usr/bin/env bash
# bench/vote_gsm8k.sh HONE [DIR] — multi-LLM voting on GSM8K with SmolLM2-135M-Instruct: two small LoRA adapters are
# trained on two disjoint slices of GSM8K's train.jsonl (lines 1-200 and 201-400, worked solutions ending "The answer
# is N."), then `hone vote` lets the base and the two adapters answer the file's last N questions (never trained on)
# and prints each voter's accuracy and the vote's. Everything goes to DIR (default: vote-gsm8k/); the table is
# DIR/vote.txt, the answers DIR/vote.jsonl. Env: N (questions, default 50), STEPS (training steps per adapter,
# default 50), MAX_TOKENS (default 256), THREADS (default 2), DATA (default ../shared/data/gsm8k/train.jsonl).
# Then the same three voters on ARC-Easy's first N test questions as multiple choice (the choices listed as "A. ...",
# answers by --regex for a letter in 4 tokens): DIR/arc.txt.
set -eu
hone=${1:?usage: bench/vote_gsm8k.sh HONE [DIR]}
dir=${2:-vote-gsm8k}
src=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA:-$src/../shared/data/gsm8k/train.jsonl}
n=${N:-50}; steps=${STEPS:-50}; max_tokens=${MAX_TOKENS:-256}; threads=${THREADS:-2}
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$dir"
model=$("$hone" pull smollm2-135m-instruct | tail -1)

# Training slices as chat messages: the question with the prompt's instruction, the solution without GSM8K's
# calculator annotations (<<48/2=24>>), its "#### N" as a sentence.
python3 - "$data" "$dir" <<'EOF'
import json, re, sys
data, out = sys.argv[1], sys.argv[2]
lines = [json.loads(l) for l in open(data) if l.strip()]
def msg(q):
    sol, ans = q["answer"].rsplit("####", 1)
    sol = re.sub(r"<<[^>]*>>", "", sol).strip()
    return {"messages": [{"role": "user", "content": q["question"] + "\nEnd your answer with the final number."},
                         {"role": "assistant", "content": f"{sol}\nThe answer is {ans.strip()}."}]}
for name, part in (("g1", lines[0:200]), ("g2", lines[200:400])):
    with open(f"{out}/{name}.jsonl", "w") as f:
        for q in part: f.write(json.dumps(msg(q)) + "\n")
EOF
tail -"$n" "$data" >"$dir/test.jsonl"

for a in g1 g2; do
  [ -f "$dir/$a/adapter/adapter_config.json" ] && continue
  seed=1; [ $a = g2 ] && seed=2
  "$hone" train -m "$model" --data "$dir/$a.jsonl" -o "$dir/$a" --max-steps "$steps" --batch 4 --max-len 384 \
    --rank 8 --lr 2e-4 --seed $seed --threads "$threads" 2>"$dir/$a.train.log"
done

set -x
/usr/bin/time -v "$hone" vote -m "$model" --adapter "g1=$dir/g1/adapter" --adapter "g2=$dir/g2/adapter" \
  --data "$dir/test.jsonl" --max-tokens "$max_tokens" --threads "$threads" --json >"$dir/vote.jsonl" 2>"$dir/vote.log"
set +x
python3 - "$dir/vote.jsonl" <<'EOF' | tee "$dir/vote.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
s = rows[-1]["summary"]
for v in s["voters"]: print(f"{v['name'].rsplit('/', 1)[-1]:40s} {v['correct']:3d}/{s['with_gold']}  {v['accuracy']:.3f}")
print(f"{'voted':40s} {s['voted']['correct']:3d}/{s['with_gold']}  {s['voted']['accuracy']:.3f}")
rows = rows[:-1]
agree = sum(len(set(r["answers"])) == 1 for r in rows)
print(f"all three voters agree on {agree}/{len(rows)} questions; no answer from a voter: "
      f"{sum(a is None for r in rows for a in r['answers'])}")
EOF
grep -E "answers in|Maximum resident|Elapsed" "$dir/vote.log"

# ARC-Easy: the question with its lettered choices; gold: the answer key.
arc=${ARC:-$src/../shared/data/arc/ARC-Easy/ARC-Easy-Test.jsonl}
python3 - "$arc" "$n" >"$dir/arc.jsonl" <<'EOF'
import json, sys
for l in list(open(sys.argv[1]))[:int(sys.argv[2])]:
    q = json.loads(l)
    ch = "\n".join(f"{c['label']}. {c['text']}" for c in q["question"]["choices"])
    print(json.dumps({"question": f"{q['question']['stem']}\n{ch}\nAnswer with the letter of the correct choice.",
                      "answer": q["answerKey"]}))
EOF
set -x
"$hone" vote -m "$model" --adapter "g1=$dir/g1/adapter" --adapter "g2=$dir/g2/adapter" --data "$dir/arc.jsonl" \
  --regex '\b([A-E])\b' --max-tokens 4 --threads "$threads" >"$dir/arc.txt" 2>"$dir/arc.log"
set +x
tail -5 "$dir/arc.txt"
