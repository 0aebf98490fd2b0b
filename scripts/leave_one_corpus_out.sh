#!/bin/bash
# Leave-one-corpus-out for the speech recipe: for each corpus, train on the other two and score on
# the one left out (whole), through int8 as on the device. Resumable: run it again after a stop.
#   bash scripts/leave_one_corpus_out.sh RUNS_DIR            (about 15-25 min a corpus on 2 cores)
# EMOVO and TurEV-DB left out: v2's recipe without that corpus (fine-tune v1, then the 0.4 blend);
# RAVDESS left out: from random weights (v1 has heard RAVDESS).
#   BASE=BASE/final.keras SHARE=0.6 CLAMP=60 LEFT="turev-db emovo" bash scripts/leave_one_corpus_out.sh RUNS_DIR
# v3's recipe (BASE from: affectlite-convert train speech --recipe ravdess --dynamic-range-db 60 --out BASE).
set -euo pipefail
RUNS=${1:?usage: leave_one_corpus_out.sh RUNS_DIR}
DATA=${DATA:-../shared/data/speech}
mkdir -p "$RUNS"
V1=${BASE:-$RUNS/speech_emotion_v1.keras}
[ -f "$V1" ] || git show 1fecfe3:sdk/affectlite/models/speech_emotion.keras > "$V1"
clamp=(); [ -n "${CLAMP:-}" ] && clamp=(--dynamic-range-db "$CLAMP")
for left in ${LEFT:-emovo turev-db ravdess}; do
  out=$RUNS/left_out_$left
  others=$(echo ravdess,emovo,turev-db | tr , '\n' | grep -vx "$left" | paste -sd,)
  if [ "$left" = ravdess ]; then start=(); else start=(--init "$V1" --learning-rate 0.0005); fi
  resume=(); [ -f "$out/state.json" ] && resume=(--resume)
  [ -f "$out/final.keras" ] || affectlite-convert train speech --data "$DATA" --corpora "$others" --epochs 12 \
      "${start[@]}" --cache "$RUNS/speech-cache" --out "$out" "${clamp[@]}" "${resume[@]}"
  echo "== $left left out: the run alone (float)"
  affectlite-convert evaluate "$out/final.keras" --data "$DATA"
  [ "$left" = ravdess ] || affectlite-convert train blend --run "$out" --base "$V1" --share "${SHARE:-0.4}" \
      --data "$DATA" --cache "$RUNS/speech-cache"
  affectlite-convert convert "$out/speech_emotion.keras" --input-kind features --task speech-emotion \
      --calibration "$out/calibration.npz" --training-info "$out" --out "$out/speech_emotion_int8.tflite"
  echo "== $left left out: as shipped (the ${SHARE:-0.4} blend with the base where it applies), int8"
  affectlite-convert evaluate "$out/speech_emotion_int8.tflite" --data "$DATA"
done
