#!/usr/bin/env bash
# Reproduces the recipe search of docs/recipe.md: each configuration trains on all ten
# digits for MINUTES of wall time (one run at a time: runs side by side would share the
# 2 cores), then `python -m cwgan.evaluate --cas` scores it (500 samples per class).
# With the default --fit_to_time, a run whose --steps do not fit in MINUTES ends its
# schedule where the time ends; to compare settings at equal steps, name the steps (stN)
# and give MINUTES to spare (e.g. 40).
#
#   bash scripts/recipe_search.sh 5 mlp_concat_5e-5 dcgan_projection_1e-4  # named configurations
#   bash scripts/recipe_search.sh 15 default                      # the shipped defaults
#
#   bash scripts/recipe_search.sh 3 mlp_projection_2e-4_c0.05               # clip 0.05
#
# Results: runs/<name>/eval.json, and one summary line per run in runs/search.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MINUTES=$1; shift

# name -> flags. Names spell the settings: architecture, critic conditioning, learning
# rate, then extras (cC: clip value C, bB: batch size B, ncN: n_critic N, wW: width W,
# wuN: n_critic_warmup N, decay / nodecay: learning-rate decay on / off, stN: --steps=N,
# xla / noxla: XLA on / off, eN: evaluate every N steps inside the run, gp: gradient penalty,
# resize: the generator upsamples by resize and convolution, emaM: generator weight average
# at momentum M, seedN: --seed=N, glayers: label planes before every generator upsampling,
# depthN: N convolutions per critic resolution).
# DATA_DIR=dir trains on that directory's images (e.g. from scripts/resample_mnist.py).
flags_for() {
  case "$1" in
    default) echo "" ;;
    default_eval) echo "--eval_every=1000" ;;
    gp) echo "--constraint=gp" ;;
    gp_eval) echo "--constraint=gp --eval_every=1000" ;;
    *)
      local IFS=_ parts flags=""
      read -ra parts <<< "$1"
      flags="--architecture=${parts[0]} --conditioning=${parts[1]} --learning_rate=${parts[2]}"
      for extra in "${parts[@]:3}"; do
        case "$extra" in
          c*) flags+=" --clip_value=${extra#c}" ;;
          b*) flags+=" --batch_size=${extra#b}" ;;
          nc*) flags+=" --n_critic=${extra#nc}" ;;
          wu*) flags+=" --n_critic_warmup=${extra#wu}" ;;  # before w*: width
          w*) flags+=" --width=${extra#w}" ;;
          xla) flags+=" --jit_compile=true" ;;
          decay) flags+=" --lr_decay" ;;
          nodecay) flags+=" --nolr_decay" ;;
          noxla) flags+=" --jit_compile=false" ;;
          seed[0-9]*) flags+=" --seed=${extra#seed}" ;;
          st[0-9]*) flags+=" --steps=${extra#st}" ;;
          ema*) flags+=" --ema=${extra#ema}" ;;
          e[0-9]*) flags+=" --eval_every=${extra#e}" ;;
          gp) flags+=" --constraint=gp" ;;
          resize) flags+=" --upsampling=resize" ;;
          glayers) flags+=" --generator_conditioning=layers" ;;
          depth[0-9]*) flags+=" --critic_depth=${extra#depth}" ;;
          *) echo "unknown extra setting: $extra" >&2; exit 2 ;;
        esac
      done
      echo "$flags" ;;
  esac
}

mkdir -p runs
for name in "$@"; do
  dir="runs/${name}_${MINUTES}min${DATA_DIR:+_$(basename "$DATA_DIR")}"
  rm -rf "$dir"
  # shellcheck disable=SC2046
  "$PY" -m cwgan.train --digits --max_minutes="$MINUTES" --checkpoint_dir="$dir" \
      ${DATA_DIR:+--data_dir="$DATA_DIR"} $(flags_for "$name") \
      > "$dir.log" 2>&1 || { echo "$name: training failed" >&2; continue; }
  "$PY" -m cwgan.evaluate --checkpoint_dir="$dir" --n_per_class=500 --cas > "$dir/eval.json" \
      2> "$dir/eval.log"
  "$PY" - "$dir" "$name" "$MINUTES" >> runs/search.jsonl <<'PYEOF'
import json, sys
d, name, minutes = sys.argv[1:]
r = json.load(open(f"{d}/eval.json"))
g, real = r["generator"], r["real"]
print(json.dumps({"name": name, "minutes": float(minutes),
                  "generator_iterations": r["generator_iterations"],
                  "cond_acc": round(g["cond_acc"], 4),
                  "min_class_acc": round(min(g["cond_acc_per_class"].values()), 4),
                  "fd": round(g["fd"], 2), "fd_floor": round(real["fd"], 2),
                  "fd_class_mean": round(g["fd_class_mean"], 2),
                  "precision": round(g["precision"], 3), "recall": round(g["recall"], 3),
                  "coverage": round(g["coverage"], 3), "kid": round(g["kid"], 3),
                  "cas_ratio": round(r["cas_ratio"], 3),
                  "memorisation": round(g["memorisation"], 4),
                  "memorisation_floor": round(real["memorisation"], 4)}))
PYEOF
  tail -n 1 runs/search.jsonl
done
