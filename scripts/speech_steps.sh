# The steps the speech validation scripts share (sourced by them, not run). Each reads DATA, RUNS,
# the clamp array and (after read_seeds) the seeds array of the script that sources it.

# Half of v4's recipe is refused before anything is created: HOME_TUNE tunes a SCRATCH run and
# needs SHARE for the blend.
require_whole_recipe() {
  [ -z "${HOME_TUNE:-}" ] || : "${SCRATCH:?HOME_TUNE goes with SCRATCH}" "${SHARE:?SHARE is needed with HOME_TUNE}"
}

# SEEDS="7 8" (v5's recipe): each run trained once per seed, then averaged. One seed is refused
# before anything is created (an ensemble of one is the run itself).
read_seeds() {
  read -r -a seeds <<< "${SEEDS:-}"
  if [ "${#seeds[@]}" -eq 1 ]; then
    echo "SEEDS needs at least two seeds (an ensemble of one is the run itself; leave SEEDS out)" >&2
    exit 2
  fi
}

# OUT made by TRAIN (a function taking OUT, then its arguments): once, or with SEEDS once per seed
# into OUT-seedS (--seed S added) and those runs averaged by `train ensemble` into OUT.
train_each_seed() {
  local train=$1 out=$2 members=() seed
  shift 2
  if [ "${#seeds[@]}" -eq 0 ]; then
    "$train" "$out" "$@"
    return
  fi
  for seed in "${seeds[@]}"; do
    "$train" "$out-seed$seed" "$@" --seed "$seed"
    members+=(--run "$out-seed$seed")
  done
  affectlite-convert train ensemble "${members[@]}" --out "$out"
}

# v4's second and third steps: RUN trained further on RAVDESS alone (HOME_TUNE's options) into
# RUN-home, then RUN's speech_emotion.keras replaced by the SHARE blend of the two. Resumable.
tune_at_home_and_blend() {
  local out=$1 home resume=()
  read -r -a home <<< "$HOME_TUNE"
  [ -f "$out-home/state.json" ] && resume=(--resume)
  [ -f "$out-home/final.keras" ] || affectlite-convert train speech --data "$DATA" --recipe ravdess \
      --init "$out/final.keras" "${home[@]}" --out "$out-home" "${clamp[@]}" "${resume[@]}"
  blend_with "$out" "$out-home/final.keras" "$SHARE"
}

blend_with() {
  affectlite-convert train blend --run "$1" --base "$2" --share "$3" --data "$DATA" --cache "$RUNS/speech-cache"
}

# RUN's speech_emotion.keras to int8, as it ships.
convert_int8() {
  affectlite-convert convert "$1/speech_emotion.keras" --input-kind features --task speech-emotion \
      --calibration "$1/calibration.npz" --training-info "$1" --out "$1/speech_emotion_int8.tflite"
}
