#!/bin/bash
# Leave-one-corpus-out for the speech recipe: for each corpus, train on the other two and score on
# the one left out (whole), through int8 as on the device. Resumable: run it again after a stop.
#   bash scripts/leave_one_corpus_out.sh RUNS_DIR            (about 15-25 min a corpus on 2 cores)
# EMOVO and TurEV-DB left out: v2's recipe without that corpus (fine-tune v1, then the 0.4 blend);
# RAVDESS left out: from random weights (v1 has heard RAVDESS).
#   BASE=BASE/final.keras SHARE=0.6 CLAMP=60 LEFT="turev-db emovo" bash scripts/leave_one_corpus_out.sh RUNS_DIR
#       v3's recipe (BASE from: affectlite-convert train speech --recipe ravdess --dynamic-range-db 60 --out BASE).
#   SCRATCH="--epochs 40 --widths 32,64,128,192 --corpus-weights ravdess=2" \
#   HOME_TUNE="--epochs 6 --learning-rate 0.0005 --widths 32,64,128,192" SHARE=0.7 CLAMP=60 \
#   LEFT="turev-db emovo" bash scripts/leave_one_corpus_out.sh RUNS_DIR
#       v4's recipe (about 70 min a corpus): from random weights on the other two corpora with these
#       options, then that run trained on RAVDESS alone with HOME_TUNE's, and the two blended at SHARE.
#       RAVDESS cannot be left out of it (its second step is RAVDESS).
#   ... SEEDS="7 8"   (v5: each corpus's recipe trained once per seed, RUNS/left_out_CORPUS-seedS, and the runs
#       averaged by `train ensemble` into RUNS/left_out_CORPUS; v5 is v4's recipe with --widths 24,48,96,160)
set -euo pipefail
source "$(dirname "$0")/speech_steps.sh"
RUNS=${1:?usage: leave_one_corpus_out.sh RUNS_DIR}
DATA=${DATA:-../shared/data/speech}
LEFT=${LEFT:-emovo turev-db ravdess}
require_whole_recipe
read_seeds
if [ -n "${HOME_TUNE:-}" ]; then
  case " $LEFT " in *" ravdess "*) echo "v4's recipe tunes on RAVDESS: leave out emovo or turev-db only (LEFT=...)" >&2; exit 2;; esac
fi
mkdir -p "$RUNS"
if [ -z "${SCRATCH:-}" ]; then
  V1=${BASE:-$RUNS/speech_emotion_v1.keras}
  [ -f "$V1" ] || git show 1fecfe3:sdk/affectlite/models/speech_emotion.keras > "$V1"
fi
clamp=(); [ -n "${CLAMP:-}" ] && clamp=(--dynamic-range-db "$CLAMP")
if [ -n "${HOME_TUNE:-}" ]; then shipped="the $SHARE blend of the run with its RAVDESS tune"
elif [ -n "${SCRATCH:-}" ]; then shipped="the run"
else shipped="the ${SHARE:-0.4} blend with the base where it applies"; fi
[ "${#seeds[@]}" -gt 0 ] && shipped="$shipped; seeds ${seeds[*]} averaged"
# One run as the recipe ships it: OUT, trained without corpus LEFT (and any options after).
train_left_out() {
  local out=$1 left=$2 others start resume=()
  shift 2
  others=$(echo ravdess,emovo,turev-db | tr , '\n' | grep -vx "$left" | paste -sd,)
  if [ -n "${SCRATCH:-}" ]; then read -r -a start <<< "$SCRATCH"
  elif [ "$left" = ravdess ]; then start=(--epochs 12)
  else start=(--epochs 12 --init "$V1" --learning-rate 0.0005); fi
  [ -f "$out/state.json" ] && resume=(--resume)
  [ -f "$out/final.keras" ] || affectlite-convert train speech --data "$DATA" --corpora "$others" \
      "${start[@]}" "$@" --cache "$RUNS/speech-cache" --out "$out" "${clamp[@]}" "${resume[@]}"
  echo "== $left left out: $(basename "$out") alone (float)"
  affectlite-convert evaluate "$out/final.keras" --data "$DATA"
  # Training leaves its own calibrated speech_emotion.keras; a blend replaces it (a minute).
  if [ -n "${HOME_TUNE:-}" ]; then
    tune_at_home_and_blend "$out"
  elif [ -z "${SCRATCH:-}" ] && [ "$left" != ravdess ]; then
    blend_with "$out" "$V1" "${SHARE:-0.4}"
  fi
}

for left in $LEFT; do
  out=$RUNS/left_out_$left
  train_each_seed train_left_out "$out" "$left"
  convert_int8 "$out"
  echo "== $left left out: as shipped ($shipped), int8"
  affectlite-convert evaluate "$out/speech_emotion_int8.tflite" --data "$DATA"
done
