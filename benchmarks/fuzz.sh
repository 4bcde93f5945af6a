#!/usr/bin/env bash
# Fuzzing, run for a bounded time per target (cargo fuzz / libFuzzer, nightly toolchain):
#   reference         image references and repository names
#   registry_headers  WWW-Authenticate challenges and Location headers
#   layer_tar         a layer blob as import checks and normalizes it
#   import_archive    an import --src archive (OCI layout or docker save; tar, gzip, zstd)
# Seeds are made here with the release tool (a real layer, layout and docker-save tarball) and
# Python's tarfile (GNU long names, pax records, links). A single allocation over 256 MiB or
# an input that runs over 10 s counts as a finding, like a crash. The corpus grows in
# tools/fuzz/corpus/ across runs; findings land in tools/fuzz/artifacts/. Inputs that once
# failed are kept in tools/fuzz/regressions/<target>/ and run as seeds every time.
# Prints per target: seconds, executions, executions/s, corpus size, findings. Exits non-zero
# when something was found.
#   benchmarks/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
seconds=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(reference registry_headers layer_tar import_archive)
fuzz="$repo/tools/fuzz"
work=$(mktemp -d /tmp/rules_image_fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked -q
(cd "$repo/tools" && cargo build --release --locked -q)
tool="$repo/tools/target/release/rules-image-tool"
(cd "$repo/tools" && cargo +nightly fuzz build -O >/dev/null 2>&1) || {
  (cd "$repo/tools" && cargo +nightly fuzz build -O)
  exit 1
}

# Seeds: one directory per target.
seeds="$work/seeds"
mkdir -p "$seeds"/{reference,registry_headers,layer_tar,import_archive}
printf '%s' 'reg.example:5000/team/app:v1@sha256:0000000000000000000000000000000000000000000000000000000000000000' >"$seeds/reference/1"
printf '%s' 'alpine' >"$seeds/reference/2"
printf '%s' '[::1]:5000/a/b@sha256:1111111111111111111111111111111111111111111111111111111111111111' >"$seeds/reference/3"
printf '%s' 'Bearer realm="https://auth.example/token",service="reg.example",scope="repository:a/b:pull,push"' >"$seeds/registry_headers/1"
printf '%s\n%s' 'https://reg.example/v2/a/blobs/uploads/' '/v2/a/blobs/uploads/u1?_state=x' >"$seeds/registry_headers/2"
printf '%s\n%s' 'http://127.0.0.1:5000/v2/a/blobs/sha256:aa' '//cdn.example/x?sig=1' >"$seeds/registry_headers/3"
python3 - "$seeds/layer_tar" <<'EOF'
import io, sys, tarfile
out = sys.argv[1]
def tar(path, fmt, members):
    with tarfile.open(path, "w", format=fmt) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
def f(name, data=b"x", **kw):
    i = tarfile.TarInfo(name); i.size = len(data); i.mtime = 1
    for k, v in kw.items(): setattr(i, k, v)
    return i, data
def d(name):
    i = tarfile.TarInfo(name); i.type = tarfile.DIRTYPE; i.mode = 0o755; return i, None
def l(name, target, kind):
    i = tarfile.TarInfo(name); i.type = kind; i.linkname = target; return i, None
tar(f"{out}/plain.tar", tarfile.USTAR_FORMAT,
    [d("etc/"), f("etc/hello", b"hello\n"), l("etc/link", "hello", tarfile.SYMTYPE),
     l("etc/hard", "etc/hello", tarfile.LNKTYPE), f("etc/.wh.gone", b"")])
tar(f"{out}/gnu.tar", tarfile.GNU_FORMAT, [f("d/" + "n" * 150, b"long name")])
pax = f("p", b"pax", pax_headers={"SCHILY.xattr.security.capability": "\x01\x00\x00\x02",
                                 "mtime": "1.5"})
tar(f"{out}/pax.tar", tarfile.PAX_FORMAT, [pax])
EOF
gzip -9nk "$seeds/layer_tar/plain.tar" && mv "$seeds/layer_tar/plain.tar.gz" "$seeds/layer_tar/plain.tgz"
(
  cd "$work"
  printf 'hello\n' >hello
  "$tool" layer --output l.tar.gz --metadata l.json --compression gzip "file	/etc/hello	hello" "dir	/tmp" >/dev/null
  printf '{"os":"linux","architecture":"amd64"}' >frag.json
  "$tool" manifest --config-fragment frag.json --layer l.json --output-manifest m.json \
    --output-config c.json --output-digest d --output-descriptor desc.json >/dev/null
  "$tool" layout --manifest m.json --config c.json --blob l.tar.gz --output lay >/dev/null
  "$tool" tarball --manifest m.json --config c.json --blob l.tar.gz --tag app:1 --output "$seeds/import_archive/docker-save.tar" >/dev/null
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$seeds/import_archive/layout.tar" -C lay .
  cp l.tar.gz "$seeds/layer_tar/tool-layer.tgz"
)
for t in "${targets[@]}"; do
  [[ -d $fuzz/regressions/$t ]] && cp "$fuzz/regressions/$t"/* "$seeds/$t/"
done

printf '\n%-18s %8s %12s %10s %8s %9s\n' target seconds executions "exec/s" corpus findings
found=0
for t in "${targets[@]}"; do
  corpus="$fuzz/corpus/$t"
  artifacts="$fuzz/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  before=$(find "$artifacts" -type f | wc -l)
  log="$work/$t.log"
  # libFuzzer exits non-zero on a finding; the figures are read from its log either way.
  (cd "$repo/tools" && cargo +nightly fuzz run -O "$t" "$corpus" "$seeds/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 -malloc_limit_mb=256 -rss_limit_mb=2048 \
    -timeout=10 -artifact_prefix="$artifacts/" >"$log" 2>&1) || true
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  after=$(find "$artifacts" -type f | wc -l)
  new=$((after - before))
  found=$((found + new))
  size=$(find "$corpus" -type f | wc -l)
  printf '%-18s %8s %12s %10s %8s %9s\n' "$t" "$seconds" "${execs:-?}" \
    "$(( ${execs:-0} / seconds ))" "$size" "$new"
  if [[ $new -gt 0 ]]; then
    grep -E '^(==[0-9]+==|SUMMARY|thread .* panicked|.*out-of-memory|.*Timeout)' "$log" | head -5 | sed 's/^/    /'
    find "$artifacts" -type f -newer "$log" -o -type f -cnewer "$seeds" | head -3 | sed 's/^/    artifact: /'
  fi
done
echo
if [[ $found -gt 0 ]]; then
  echo "findings: $found (reproduce: cd tools && cargo +nightly fuzz run <target> <artifact>)"
  exit 1
fi
echo "findings: 0"
