#!/usr/bin/env bash
# npm run test:package: the package as a user gets it. Packs the tarball (prepack builds the prebuilds),
# checks what it holds, then installs it into fresh projects in a temporary directory:
#   a. `npm install <tgz>` with a PATH of node, npm and sh alone (no cc, g++, make or python3 to be found);
#   b. the same with --ignore-scripts;
#   in each: require('iomux') loads the prebuild and echoes, an .mjs consumer imports the named exports and
#   echoes and checks every subpath's names against require's, a TypeScript consumer type-checks under
#   moduleResolution node16 and bundler, nothing of the tools was installed, and `iomux bench` says in one
#   line which packages it needs;
#   then a project that has its own commander 12 installs it too (optional peers of any version);
#   c. a tarball without the linux-x64 prebuild, installed with the compiler on PATH: the install script
#   prints its one line, builds from source, and the consumers pass on that build.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/iomux-package.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log() { printf '== test:package [%3d s]: %s\n' "$SECONDS" "$*"; }
fail() { echo "test:package: $*" >&2; exit 1; }
TSC="$ROOT/node_modules/typescript/bin/tsc"
TYPES="$ROOT/node_modules/@types"

log "npm pack (prepack: prebuilds; prepare: TypeScript)"
(cd "$ROOT" && npm pack --pack-destination "$WORK" > "$WORK/pack.log" 2>&1) || { cat "$WORK/pack.log"; fail "npm pack failed"; }
TGZ=$(ls "$WORK"/iomux-*.tgz)
tar tzf "$TGZ" | sort > "$WORK/contents.txt"
for want in package/prebuilds/linux-x64/iomux.napi.uv1.glibc.node package/prebuilds/win32-x64/iomux.napi.node \
    package/dist/lib/index.js package/dist/lib/index.d.ts package/dist/esm/index.mjs package/dist/esm/index.d.mts \
    package/dist/tools/cli.js package/dist/bench/suite.js package/native/addon.cc package/native/platform.h \
    package/binding.gyp package/CMakeLists.txt package/bench/loadgen.c package/bench/common.h package/scripts/install.js; do
  grep -qx "$want" "$WORK/contents.txt" || fail "the tarball lacks $want"
done
if grep -E '^package/(dist/)?test/|^package/build/|^package/node_modules/|\.tsbuildinfo$' "$WORK/contents.txt"; then
  fail "the tarball holds tests or build output (above)"
fi
log "$(basename "$TGZ"): $(wc -l < "$WORK/contents.txt") files, $(du -k "$TGZ" | cut -f1) kB packed"

log "the glibc floor: what the Linux prebuilds need (scripts/glibc-floor.js fails above glibc 2.28 or GCC 8's libstdc++)"
mkdir -p "$WORK/unpacked"
tar xzf "$TGZ" -C "$WORK/unpacked"
(cd "$WORK/unpacked/package" && node "$ROOT/scripts/glibc-floor.js" prebuilds/linux-*/iomux.napi.uv1.glibc.node) || fail "a prebuild needs more than the floor"

# A PATH with node, npm and sh only (npm runs every script through sh): npm's own node-gyp is still there
# (npm always has it), but nothing it would need to compile is.
BIN="$WORK/bin"
mkdir -p "$BIN"
ln -s "$(command -v node)" "$BIN/node"
ln -s "$(command -v npm)" "$BIN/npm"
ln -s "$(command -v sh)" "$BIN/sh"
for tool in cc gcc g++ c++ make python3; do
  PATH="$BIN" command -v "$tool" > /dev/null && fail "$tool is reachable through $BIN"
done

# project <name> <tarball> <expected addon path fragment> <PATH for npm install> <npm install flags...>
project() {
  local name=$1 tgz=$2 expected=$3 install_path=$4
  shift 4
  local dir="$WORK/$name"
  mkdir -p "$dir"
  printf '{ "name": "consumer-%s", "private": true }\n' "$name" > "$dir/package.json"
  cp "$ROOT/scripts/package/consumer.cjs" "$ROOT/scripts/package/consumer.mjs" "$dir/"
  cp "$ROOT/scripts/package/consumer.ts" "$dir/consumer.ts"
  cp "$ROOT/scripts/package/consumer.ts" "$dir/consumer.mts"
  log "$name: npm install $(basename "$tgz") $* (PATH=$([ "$install_path" = "$PATH" ] && echo "as is" || echo "$install_path"))"
  (cd "$dir" && PATH="$install_path" npm install --no-audit --no-fund --foreground-scripts "$@" "$tgz") > "$dir/install.log" 2>&1 \
    || { cat "$dir/install.log"; fail "$name: npm install failed"; }
  (cd "$dir" && node consumer.cjs "$expected" && node consumer.mjs) || fail "$name: a consumer failed"

  local resolution
  for resolution in node16 bundler; do
    local module=$resolution files='"consumer.ts", "consumer.mts"'
    [ "$resolution" = bundler ] && { module=esnext; files='"consumer.ts"'; }
    cat > "$dir/tsconfig.$resolution.json" <<EOF
{ "compilerOptions": { "module": "$module", "moduleResolution": "$resolution", "target": "es2022", "strict": true,
    "noEmit": true, "types": ["node"], "typeRoots": ["$TYPES"] }, "files": [$files] }
EOF
    (cd "$dir" && node "$TSC" -p "tsconfig.$resolution.json") || fail "$name: the TypeScript consumer fails under moduleResolution $resolution"
  done
  log "$name: the TypeScript consumer type-checks under node16 (.ts and .mts) and bundler"

  local leaked
  leaked=$(cd "$dir/node_modules" && ls -d commander vega vega-lite benchmark cli-table3 cli-progress ftp-srv node-addon-api 2> /dev/null || true)
  [ -z "$leaked" ] || fail "$name: a library install brought tool packages: $leaked"
  local out status=0
  out=$(cd "$dir" && PATH="$BIN:$dir/node_modules/.bin" iomux bench 2>&1) || status=$?
  [ "$status" = 1 ] || fail "$name: iomux bench without its packages exited $status: $out"
  [[ "$out" =~ ^iomux\ bench\ needs\ commander,\ benchmark,\ cli-progress,\ cli-table3,\ vega,\ vega-lite:\ npm\ install\ commander@ ]] \
    || fail "$name: iomux bench without its packages said: $out"
  log "$name: node_modules $(du -sk "$dir/node_modules" | cut -f1) kB; iomux bench says: $out"
}

project no-compiler "$TGZ" prebuilds/linux-x64/iomux.napi.uv1.glibc.node "$BIN"
grep -q "building from source" "$WORK/no-compiler/install.log" && fail "no-compiler: the install built from source"
project ignore-scripts "$TGZ" prebuilds/linux-x64/iomux.napi.uv1.glibc.node "$BIN" --ignore-scripts

log "peer-conflict: a project with its own commander 12 installs iomux (its optional peers take any version)"
mkdir -p "$WORK/peer-conflict"
printf '{ "name": "consumer-peer-conflict", "private": true, "dependencies": { "commander": "^12.0.0" } }\n' > "$WORK/peer-conflict/package.json"
(cd "$WORK/peer-conflict" && npm install --no-audit --no-fund > install.log 2>&1 && npm install --no-audit --no-fund "$TGZ" >> install.log 2>&1) \
  || { cat "$WORK/peer-conflict/install.log"; fail "peer-conflict: npm install failed"; }
(cd "$WORK/peer-conflict" && node -e "require('iomux').binding.close(require('iomux').binding.socket(2, 1))") || fail "peer-conflict: require('iomux') failed"

log "a tarball without the linux-x64 prebuild"
mkdir -p "$WORK/repack"
tar xzf "$TGZ" -C "$WORK/repack"
rm -rf "$WORK/repack/package/prebuilds/linux-x64"
NOPREBUILD="$WORK/iomux-no-linux-prebuild.tgz"
tar czf "$NOPREBUILD" -C "$WORK/repack" package
project from-source "$NOPREBUILD" build/Release/iomux.node "$PATH"
lines=$(grep -c "^iomux: no prebuilt binary for linux-x64 (N-API v8); building from source$" "$WORK/from-source/install.log" || true)
[ "$lines" = 1 ] || { cat "$WORK/from-source/install.log"; fail "from-source: expected the one fallback line, found $lines"; }
log "from-source: said so in one line and built (node-gyp, node-addon-api fetched on demand)"
log "ok"
