#!/usr/bin/env bash
# Rebuild the shipped calibrations from the public measurements in ../shared/data.
# Each table is derived by infsim's own importers (see each meta.yaml for provenance).
# Run from the repository root:  bash calibration/build_defaults.sh
set -euo pipefail
cd "$(dirname "$0")/.."
P=../shared/data/profiles
AIC=$P/nvidia_aiconfigurator/data
LSS=$P/casys_llmservingsim/perf
run() { infsim calibrate import "$@" --force; }

# NVIDIA AIConfigurator (vLLM kernels, CUDA-graph timing): GEMM, attention, all-reduce, MoE.
run aiconfigurator "$AIC/h100_sxm" --name h100-vllm-0.19 --engine vllm --engine-version 0.19.0 \
    --dtype bfloat16 --dtype fp8 -o calibration/h100-vllm-0.19
run aiconfigurator "$AIC/h200_sxm" --name h200-vllm-0.19 --engine vllm --engine-version 0.19.0 \
    --dtype bfloat16 --dtype fp8 -o calibration/h200-vllm-0.19
run aiconfigurator "$AIC/a100_sxm" --name a100-vllm-0.14 --engine vllm --engine-version 0.14.0 \
    --dtype bfloat16 -o calibration/a100-vllm-0.14

# LLMServingSim (vLLM 0.19 per-layer profiles) for the GPUs of the measured runs.
run llmservingsim "$LSS/RTXPRO6000/meta-llama/Llama-3.1-8B/bf16" --name rtxpro6000-vllm-0.19 \
    --model llama-3.1-8b -o calibration/rtxpro6000-vllm-0.19
run llmservingsim "$LSS/RTX4090/meta-llama/Llama-3.1-8B/bf16" --name rtx4090-vllm-0.19 \
    --model llama-3.1-8b -o calibration/rtx4090-vllm-0.19
