#!/usr/bin/env bash
# The whole pipeline, stage by stage: plan (with a budget) -> split -> train folds -> OOF -> linear model (if on) -> refit (if on) -> thresholds -> test prediction
# -> submission CSVs -> report (runs/<name>/report.md). Every stage skips work done from the same inputs (content hashes in
# runs/<name>/stamps/), so rerunning this script resumes where it stopped, and after an edit of train.csv, test.csv or
# schema.json redoes exactly the stages that depend on it.
#
#   bash pipelines/run_all.sh                                   # synthetic dataset, default recipe
#   bash pipelines/run_all.sh --data DIR --config configs/cpu.yaml [--name NAME]
#
# Options: --data DIR  --config FILE  --name NAME  --runs DIR (default runs)
#          --out DIR (submissions root, default submissions)  --folds 0,2  --force
#          --set key=value (repeatable config override)
#          --budget 20m (plan folds, image size and epochs so the whole run ends within it)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"

data="" config="configs/default.yaml" name="" runs="runs" out="submissions" folds="" force=()
overrides=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --name) name="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --folds) folds="$2"; shift 2 ;;
    --force) force=(--force); shift ;;
    --set) overrides+=(--set "$2"); shift 2 ;;
    --budget) overrides+=(--set "budget.minutes=$2"); shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [[ -z "$data" ]]; then
  data="input/synthetic"
  if [[ ! -f "$data/train.csv" ]]; then
    echo "== no --data given: generating the synthetic dataset in $data"
    "$PYTHON" -m fashioncomp.synth --out "$data" --n-train 1500 --n-test 500 --seed 0
  fi
fi
# stage NAME COMMAND...: run one stage; a stage killed by a signal (a crash inside a native library,
# the out-of-memory killer, Ctrl-C) gets a line saying what that means, where bash alone prints
# only "Segmentation fault"
stage() {
  local name="$1" rc=0 signal
  shift
  "$@" || rc=$?
  (( rc == 0 )) && return 0
  if (( rc > 128 )); then
    signal="SIG$(kill -l $(( rc - 128 )) 2>/dev/null || echo "$(( rc - 128 ))")"
    case "$signal" in
      SIGSEGV|SIGABRT|SIGBUS|SIGILL)
        echo "run_all.sh: the $name stage crashed ($signal) inside a native library (torch, timm's kernels, a" \
             "decoder), not in fashioncomp's Python code. Some timm backbones crash in torch's CPU kernels with" \
             "channels-last memory (fastvit_*, repvgg_* on some CPUs): retry under another --name with" \
             "--set train.channels_last=false, or pick another model.backbone." >&2 ;;
      SIGKILL)
        echo "run_all.sh: the $name stage was killed ($signal), most often by the kernel's out-of-memory" \
             "killer: lower train.batch_size, predict.batch_size or data.num_workers." >&2 ;;
      *)
        echo "run_all.sh: the $name stage was stopped ($signal)." >&2 ;;
    esac
    echo "run_all.sh: finished work is kept in $run; the same command resumes from it." >&2
  fi
  exit "$rc"
}

[[ -n "$name" ]] || name="$(basename "$data")-$(basename "$config" .yaml)"
run="$runs/$name"
started=$SECONDS

echo "== init $run"
stage init "$PYTHON" -m fashioncomp init --run "$run" --data "$data" --config "$config" ${overrides[@]+"${overrides[@]}"} \
  ${force[@]+"${force[@]}"}
echo "== plan"
stage plan "$PYTHON" -m fashioncomp plan --run "$run" ${force[@]+"${force[@]}"}
echo "== split"
stage split "$PYTHON" -m fashioncomp split --run "$run" ${force[@]+"${force[@]}"}
echo "== train"
stage train "$PYTHON" -m fashioncomp train --run "$run" ${folds:+--folds "$folds"} ${force[@]+"${force[@]}"}
echo "== out-of-fold predictions"
stage oof "$PYTHON" -m fashioncomp oof --run "$run" ${force[@]+"${force[@]}"}
echo "== linear model"
stage linear "$PYTHON" -m fashioncomp linear --run "$run" ${force[@]+"${force[@]}"}
echo "== refit"
stage refit "$PYTHON" -m fashioncomp refit --run "$run" ${force[@]+"${force[@]}"}
echo "== thresholds"
stage thresholds "$PYTHON" -m fashioncomp thresholds --run "$run" ${force[@]+"${force[@]}"}
if [[ -f "$data/test.csv" ]]; then
  echo "== predict test"
  stage predict "$PYTHON" -m fashioncomp predict --run "$run" ${force[@]+"${force[@]}"}
  echo "== submission"
  stage submission "$PYTHON" -m fashioncomp.make_submission --run "$run" --out "$out"
else
  echo "== $data/test.csv not found: skipping test prediction and submission (CV scores are in $run)"
fi
echo "== report"
stage report "$PYTHON" -m fashioncomp.report --run "$run"
echo "== done in $(( SECONDS - started ))s: run directory $run"
