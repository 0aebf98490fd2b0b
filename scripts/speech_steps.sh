# The steps the speech validation scripts share (sourced by them, not run). Each reads DATA, RUNS
# and the clamp array of the script that sources it.

# Half of v4's recipe is refused before anything is created: HOME_TUNE tunes a SCRATCH run and
# needs SHARE for the blend.
require_whole_recipe() {
  [ -z "${HOME_TUNE:-}" ] || : "${SCRATCH:?HOME_TUNE goes with SCRATCH}" "${SHARE:?SHARE is needed with HOME_TUNE}"
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
