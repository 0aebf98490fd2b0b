#!/bin/bash
# EMOVO speaker by speaker: the bundled speech recipe (a RAVDESS base fine-tuned on the three
# corpora, then blended with the base, int8) trained three times, each time holding out one pair of
# EMOVO speakers (f1+m1, f2+m2, f3+m3; TurEV-DB 1984+6783 and RAVDESS 17-20 held out as always),
# and scored on the pair it never heard: every EMOVO speaker is scored once, by a model that never
# heard them. The f3+m3 fold is the bundled model's own split. Resumable: run it again after a stop.
#   bash scripts/emovo_speaker_folds.sh RUNS_DIR              (v2's recipe: v1, unclamped, share 0.4)
#   BASE=BASE/final.keras SHARE=0.6 CLAMP=60 bash scripts/emovo_speaker_folds.sh RUNS_DIR   (v3's recipe;
#       BASE from: affectlite-convert train speech --recipe ravdess --dynamic-range-db 60 --out BASE)
#   FOLDS="1 2" bash scripts/emovo_speaker_folds.sh RUNS_DIR  (some folds only; about 15-28 min a fold on 2 cores)
#   SCRATCH="--epochs 40 --widths 32,64,128,192 --corpus-weights ravdess=2" CLAMP=60 bash scripts/emovo_speaker_folds.sh RUNS_DIR
#       (a recipe from random weights on the three corpora, these options added; no base, no blend)
#   ... HOME_TUNE="--epochs 6 --learning-rate 0.0005 --widths 32,64,128,192" SHARE=0.7   (v4's recipe: then each fold's
#       run trained on RAVDESS alone with these options, and the run blended with that at SHARE; about 70 min a fold)
#   ... SEEDS="7 8"   (v5: each fold's recipe trained once per seed, RUNS/emovo_fold_N-seedS, and the runs averaged
#       by `train ensemble` into RUNS/emovo_fold_N; v5 is v4's recipe with --widths 24,48,96,160 in SCRATCH and HOME_TUNE)
set -euo pipefail
source "$(dirname "$0")/speech_steps.sh"
RUNS=${1:?usage: emovo_speaker_folds.sh RUNS_DIR}
DATA=${DATA:-../shared/data/speech}
require_whole_recipe
read_seeds
mkdir -p "$RUNS"
BASE=${BASE:-$RUNS/speech_emotion_v1.keras}
if [ -n "${SCRATCH:-}" ]; then
  read -r -a start <<< "$SCRATCH"
  shipped="from random weights: $SCRATCH${HOME_TUNE:+; then RAVDESS alone: $HOME_TUNE; blend $SHARE}"
else
  shipped="the ${SHARE:-0.4} blend with the base"
  [ -f "$BASE" ] || git show 1fecfe3:sdk/affectlite/models/speech_emotion.keras > "$BASE"
  start=(--init "$BASE" --epochs 12 --learning-rate 0.0005)
fi
[ "${#seeds[@]}" -gt 0 ] && shipped="$shipped; seeds ${seeds[*]} averaged"
clamp=(); [ -n "${CLAMP:-}" ] && clamp=(--dynamic-range-db "$CLAMP")
# One fold's run as the recipe ships it: OUT, with FOLD's EMOVO pair held out (and any options after).
train_fold() {
  local out=$1 fold=$2 resume=()
  shift 2
  [ -f "$out/state.json" ] && resume=(--resume)
  [ -f "$out/final.keras" ] || affectlite-convert train speech --data "$DATA" "${start[@]}" "$@" \
      --val-speakers "emovo:f$fold,emovo:m$fold,turev-db:1984,turev-db:6783" \
      --cache "$RUNS/speech-cache" --out "$out" "${clamp[@]}" "${resume[@]}"
  # Training leaves its own calibrated speech_emotion.keras; the blend replaces it (a minute).
  if [ -z "${SCRATCH:-}" ]; then
    blend_with "$out" "$BASE" "${SHARE:-0.4}"
  elif [ -n "${HOME_TUNE:-}" ]; then
    tune_at_home_and_blend "$out"
  fi
}

for fold in ${FOLDS:-1 2 3}; do
  out=$RUNS/emovo_fold_$fold
  train_each_seed train_fold "$out" "$fold"
  convert_int8 "$out"
  echo "== fold $fold: EMOVO f$fold and m$fold held out, as shipped ($shipped), int8"
  affectlite-convert evaluate "$out/speech_emotion_int8.tflite" --data "$DATA"
done
