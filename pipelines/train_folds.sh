#!/usr/bin/env bash
# Train the folds of a run in parallel, one process per GPU (CUDA_VISIBLE_DEVICES set per
# process), or one after another in a single process when there is no GPU. Waits for every
# process and fails if any fold fails. The run directory must exist (init + split stages).
#
#   bash pipelines/train_folds.sh --run runs/NAME                  # every fold, every visible GPU
#   bash pipelines/train_folds.sh --run runs/NAME --gpus 0,1 --folds 0,1,2,3,4
#
# Options: --run DIR (required)  --gpus 0,1,...  (default: $CUDA_VISIBLE_DEVICES, else every GPU
#          nvidia-smi lists, else none)  --folds 0,2 (default: all)  --force
# With more folds than GPUs, each GPU trains its share one after another. Each GPU's output goes
# to <run>/logs/train_gpu<id>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"

run="" gpus="" gpus_given=0 folds="" force=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --run) run="$2"; shift 2 ;;
    --gpus) gpus="$2"; gpus_given=1; shift 2 ;;
    --folds) folds="$2"; shift 2 ;;
    --force) force=(--force); shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "train_folds.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$run" ]] || { echo "train_folds.sh: --run DIR is required (see --help)" >&2; exit 2; }
[[ -f "$run/config.yaml" ]] || { echo "train_folds.sh: $run has no config.yaml; run the init and split stages first" >&2; exit 2; }

if [[ $gpus_given == 0 ]]; then
  if [[ -n "${CUDA_VISIBLE_DEVICES+set}" ]]; then
    gpus="$CUDA_VISIBLE_DEVICES"
  elif command -v nvidia-smi >/dev/null 2>&1; then
    gpus="$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | paste -sd, - || true)"
  fi
fi
if [[ -z "$folds" ]]; then
  folds="$("$PYTHON" -c 'import sys, yaml; print(",".join(map(str, range(int(yaml.safe_load(open(sys.argv[1]))["split"]["n_folds"])))))' "$run/config.yaml")"
fi
IFS=, read -r -a gpu_list <<< "$gpus"
IFS=, read -r -a fold_list <<< "$folds"

if [[ ${#gpu_list[@]} -eq 0 ]]; then
  echo "== no GPU: training folds $folds one after another"
  exec "$PYTHON" -m fashioncomp train --run "$run" --folds "$folds" ${force[@]+"${force[@]}"}
fi

# decode the image cache once, before the processes that would all build it at once
"$PYTHON" -c 'import sys; from fashioncomp.pipeline import Run; run = Run(sys.argv[1]); run.images(run.train_data().file_paths)' "$run"

mkdir -p "$run/logs"
pids=() logs=() shares=()
trap 'kill ${pids[@]+"${pids[@]}"} 2>/dev/null || true' INT TERM
for i in "${!gpu_list[@]}"; do
  share=""
  for ((k = i; k < ${#fold_list[@]}; k += ${#gpu_list[@]})); do share+="${share:+,}${fold_list[k]}"; done
  [[ -n "$share" ]] || continue
  gpu="${gpu_list[i]}" log="$run/logs/train_gpu${gpu_list[i]}.log"
  echo "== GPU $gpu: folds $share (log: $log)"
  CUDA_VISIBLE_DEVICES="$gpu" "$PYTHON" -m fashioncomp train --run "$run" --folds "$share" --no-progress \
    ${force[@]+"${force[@]}"} >"$log" 2>&1 &
  pids+=($!) logs+=("$log") shares+=("$share")
done

failed=0
for i in "${!pids[@]}"; do
  if wait "${pids[i]}"; then
    echo "== folds ${shares[i]}: done"
  else
    status=$?
    failed=1
    echo "== folds ${shares[i]}: FAILED (exit status $status); end of ${logs[i]}:" >&2
    tail -n 20 "${logs[i]}" >&2
  fi
done
exit $failed
